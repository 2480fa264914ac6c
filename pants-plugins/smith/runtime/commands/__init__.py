"""One module per runtime command, each with `main(argv, globals) -> int`."""
