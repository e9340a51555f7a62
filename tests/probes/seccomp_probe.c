/*
 * A probe for tests/tests/seccomp.rs, built static by the test and run
 * inside containers: makes each syscall named on the command line and
 * prints "NAME RESULT", RESULT being "ok" or the errno's name (EPERM, ...).
 * The "-bad" probes pass arguments the kernel itself refuses with EINVAL or
 * EOPNOTSUPP, so that without a filter the answer is known exactly, and
 * with one it is the filter's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEYCTL_GET_KEYRING_ID 0
#define KEY_SPEC_USER_KEYRING -4
#define KEY_SPEC_PROCESS_KEYRING -2
#define UFFD_USER_MODE_ONLY 1
#define ADDR_NO_RANDOMIZE 0x0040000
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* clone(2) without a new stack: the child returns here, like fork. */
static long clone_flags(unsigned long flags)
{
    long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid((pid_t)pid, NULL, 0);
    return pid;
}

static long probe(const char *name)
{
    if (!strcmp(name, "keyctl"))
        return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0);
    if (!strcmp(name, "keyctl-bad"))
        return syscall(SYS_keyctl, 9999, 0, 0, 0, 0);
    if (!strcmp(name, "add_key"))
        return syscall(SYS_add_key, "user", "quilt-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING);
    if (!strcmp(name, "unshare-user"))
        return unshare(CLONE_NEWUSER);
    if (!strcmp(name, "unshare-bad"))
        return unshare(CLONE_NEWUSER | CLONE_PARENT);
    if (!strcmp(name, "clone-user"))
        return clone_flags(CLONE_NEWUSER);
    if (!strcmp(name, "clone-user-bad"))
        return clone_flags(CLONE_NEWUSER | CLONE_FS);
    if (!strcmp(name, "clone-plain"))
        return clone_flags(0);
    if (!strcmp(name, "clone3-bad"))
        return syscall(SYS_clone3, NULL, 0);
    if (!strcmp(name, "io_uring_setup-bad"))
        return syscall(SYS_io_uring_setup, 1, NULL);
    if (!strcmp(name, "userfaultfd"))
        return syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
    if (!strcmp(name, "perf_event_open-bad"))
        return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
    if (!strcmp(name, "personality-norandom"))
        return syscall(SYS_personality, ADDR_NO_RANDOMIZE);
    if (!strcmp(name, "personality-query"))
        return syscall(SYS_personality, 0xffffffffUL);
    if (!strcmp(name, "socket-vsock"))
        return socket(AF_VSOCK, SOCK_STREAM, 0);
    if (!strcmp(name, "socket-inet"))
        return socket(AF_INET, SOCK_STREAM, 0);
    fprintf(stderr, "seccomp-probe: unknown probe %s\n", name);
    _exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        errno = 0;
        long r = probe(argv[i]);
        if (r == -1)
            printf("%s %s\n", argv[i], strerrorname_np(errno));
        else
            printf("%s ok\n", argv[i]);
        fflush(stdout);
    }
    return 0;
}
