// The type, owner and mode of a file, read in C. Why not `stat` from Swift: with MemberImportVisibility the fields
// of `struct stat` belong to whichever Clang module included <sys/stat.h> first in a compile job (Glibc,
// CoreFoundation or CDispatch, which differs between a clean and an incremental build), and a file that imports
// another one fails to compile. Only fixed-width integers cross here.
#ifndef AGENTHOST_FILE_STATUS_H
#define AGENTHOST_FILE_STATUS_H

#include <stdint.h>
#include <sys/stat.h>

typedef struct agenthost_file_status {
    uint32_t uid;
    uint32_t mode;          /* permission bits (07777) */
    int32_t is_regular;     /* S_ISREG */
    int32_t is_directory;   /* S_ISDIR */
} agenthost_file_status;

static inline void agenthost_fill_file_status(const struct stat *s, agenthost_file_status *out) {
    out->uid = (uint32_t)s->st_uid;
    out->mode = (uint32_t)(s->st_mode & 07777);
    out->is_regular = S_ISREG(s->st_mode) ? 1 : 0;
    out->is_directory = S_ISDIR(s->st_mode) ? 1 : 0;
}

/* 0, or -1 with errno set. */
static inline int agenthost_fstatus(int fd, agenthost_file_status *out) {
    struct stat s;
    if (fstat(fd, &s) != 0) return -1;
    agenthost_fill_file_status(&s, out);
    return 0;
}

/* Follows symlinks like stat(2). 0, or -1 with errno set. */
static inline int agenthost_status(const char *path, agenthost_file_status *out) {
    struct stat s;
    if (stat(path, &s) != 0) return -1;
    agenthost_fill_file_status(&s, out);
    return 0;
}

#endif
