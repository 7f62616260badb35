// The system's LZ4 (Debian: liblz4-dev), for the run log's chunk compression (see EntryChunk).
#include <lz4.h>
