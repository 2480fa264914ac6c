/* hello for linux/arm64: the same program as hello.S for AArch64. A static Linux executable with
 * no libc: write(1, msg, len); exit(0). Rebuild the committed arm64/bin/hello with ./rebuild.sh
 * (Debian's binutils-aarch64-linux-gnu; no compiler, no emulator).
 */
        .globl _start
        .text
_start:
        mov     x0, #1                  /* stdout */
        adr     x1, msg
        mov     x2, #len
        mov     x8, #64                 /* SYS_write */
        svc     #0
        mov     x0, #0
        mov     x8, #93                 /* SYS_exit */
        svc     #0
        .section .rodata
msg:    .ascii  "Hello from a smith microcontainer!\n"
        len = . - msg
