/* A shared object that is not a plugin but runs code when it is mapped: its constructor creates MARKER_PATH.
 * The host must refuse it without mapping it (from its exported symbols), so the marker never appears. */
#include <fcntl.h>
#include <unistd.h>

__attribute__((constructor)) static void ran_at_load(void) {
    int fd = open(MARKER_PATH, O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) close(fd);
}

int not_a_plugin(void) { return 42; }
