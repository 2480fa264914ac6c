from smith.text import printable


def test_control_characters_are_escaped_and_the_length_capped():
    assert printable("ok \x1b[2J\x1b]0;title\x07\r\nend\u202e", 300) == "ok \\x1b[2J\\x1b]0;title\\x07\\r\\nend\\u202e"
    assert printable("a" * 500, 10) == "a" * 10
    assert printable(b"caf\xc3\xa9 \xff\x1b") == "caf\u00e9 \ufffd\\x1b"

