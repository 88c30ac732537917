// The studio: a local web application over the libraries, served by the tracecast binary.
// One session per workshop folder, kept on disk (nothing is lost on a reload); every request
// carries the session's random token; the server listens on the loopback address unless asked.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>

namespace tracecast::studio {

struct StudioOptions {
  std::string host = "127.0.0.1";        //!< the address to listen on (loopback unless asked)
  int port = 8765;                       //!< 0: any free port
  std::filesystem::path workshop = "studio";  //!< the folder the session lives in
  std::size_t max_upload_mb = 512;       //!< a larger upload is refused (413) with a message
};

class Studio {
 public:
  //! Creates the workshop's session folder; throws InputError when it cannot be made or read.
  explicit Studio(StudioOptions options);
  ~Studio();
  Studio(const Studio&) = delete;
  Studio& operator=(const Studio&) = delete;

  //! Binds the address; returns the port. Throws ProcessingError when it cannot be bound.
  int bind();
  //! Serves requests until stop() (from another thread or a signal handler's thread).
  void serve();
  void stop();

  //! The address to open, with the token: http://HOST:PORT/?token=…
  std::string url() const;
  const std::string& token() const;
  const std::filesystem::path& session_dir() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracecast::studio
