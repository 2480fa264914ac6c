/* hello: the smallest useful microcontainer program. A static x86_64 Linux executable with
 * no libc: write(1, msg, len); exit(0). Rebuild the committed bin/hello with
 *   gcc -nostdlib -static -s -Wl,-n -Wl,--build-id=none -o bin/hello hello.S
 */
        .globl _start
        .text
_start:
        mov     $1, %eax                /* SYS_write */
        mov     $1, %edi                /* stdout */
        lea     msg(%rip), %rsi
        mov     $len, %edx
        syscall
        mov     $60, %eax               /* SYS_exit */
        xor     %edi, %edi
        syscall
        .section .rodata
msg:    .ascii  "Hello from a smith microcontainer!\n"
        len = . - msg
