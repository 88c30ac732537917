// Writing a file so that readers only ever see the old content or the complete new content.
//
// The bytes go to a temporary file in the destination folder (same file system), are flushed
// to disk, and the temporary is renamed over the destination. A failure at any point leaves
// the destination untouched and removes the temporary.
#pragma once

#include <filesystem>
#include <string_view>
#include <sys/types.h>

namespace tracecast {

//! Writes `bytes` to `path` atomically with permissions `mode` (minus the umask).
//! Throws ProcessingError naming the file and the system's reason on failure.
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes, mode_t mode = 0666);

}  // namespace tracecast
