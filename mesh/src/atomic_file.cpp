#include "tracecast/mesh/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "tracecast/mesh/errors.h"

namespace tracecast {

namespace {
[[noreturn]] void fail(const std::filesystem::path& path, const char* what, int err) {
  throw ProcessingError(path.string() + ": cannot write (" + what + ": " + std::strerror(err) + ")");
}
}  // namespace

std::string read_file_or_empty(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  if (in) bytes << in.rdbuf();
  return bytes.str();
}

void write_file_atomically(const std::filesystem::path& path, std::string_view bytes, mode_t mode) {
  namespace fs = std::filesystem;
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::string tmpl = (dir / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) fail(path, "creating a temporary file", errno);
  auto cleanup = [&](const char* what, int err) {
    ::close(fd);
    ::unlink(tmpl.c_str());
    fail(path, what, err);
  };
  const mode_t mask = ::umask(0);
  ::umask(mask);
  if (::fchmod(fd, mode & ~mask) != 0) cleanup("setting permissions", errno);
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      cleanup("writing", errno);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) cleanup("flushing", errno);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmpl.c_str());
    fail(path, "closing", err);
  }
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmpl.c_str());
    fail(path, "renaming into place", err);
  }
}

void write_secret_file(const std::filesystem::path& path, std::string_view text, const char* what) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec))
    throw InputError(path, std::string("already exists; a ") + what + " is never overwritten (choose another name)");
  write_file_atomically(path, text, 0600);
}

std::string read_secret_file(const std::filesystem::path& path, const char* what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw InputError(path, std::string("cannot open the ") + what);
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 0777));
    throw InputError(path, std::string(what) + " permissions " + mode + " let other users read it; run: chmod 600 " +
                               path.string());
  }
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw InputError(path, std::string("cannot open the ") + what);
  std::string text;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() < (1u << 20)) text.append(buf, n);
  std::fclose(f);
  return text;
}

}  // namespace tracecast
