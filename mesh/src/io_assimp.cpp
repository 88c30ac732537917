// glTF/GLB, FBX and 3MF through Assimp, isolated in a child process.
//
// These formats are complex enough that a damaged file can crash or exhaust a third-party parser
// (Open3D 0.16's reader segfaults on a GLB re-encoded as text). The parse runs in a forked child
// with an address-space limit and a time limit; the child sends the triangles back over a pipe.
// A crash, a timeout or an allocation failure in the child is an InputError in the caller, never
// a crash of the tool. GLB containers are checked first, so common damage gets a precise reason.
#include <assimp/Importer.hpp>
#include <assimp/postprocess.h>
#include <assimp/scene.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <unzip.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "io_detail.h"

#if defined(__SANITIZE_ADDRESS__)
#define TRACECAST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TRACECAST_ASAN 1
#endif
#endif

namespace tracecast::io::detail {

namespace {

std::string unescape_xml(const std::string& s) {
  std::string o;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      o += s[i];
      continue;
    }
    const std::pair<const char*, char> entities[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    bool matched = false;
    for (auto [e, c] : entities)
      if (s.compare(i, std::strlen(e), e) == 0) {
        o += c;
        i += std::strlen(e) - 1;
        matched = true;
        break;
      }
    if (!matched) o += '&';
  }
  return o;
}

// ------------------------------------------------------------------ serialisation over the pipe
template <class T>
void put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

struct Reader {
  std::string_view s;
  std::size_t pos = 0;
  template <class T>
  T get() {
    if (pos + sizeof(T) > s.size()) throw std::runtime_error("short message");
    T v;
    std::memcpy(&v, s.data() + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  std::string_view bytes(std::size_t n) {
    if (n > s.size() - pos) throw std::runtime_error("short message");
    auto r = s.substr(pos, n);
    pos += n;
    return r;
  }
};

std::optional<Unit> fbx_unit(const aiScene* scene, std::vector<std::string>& notes) {
  if (!scene->mMetaData) return std::nullopt;
  double cm_per_unit = 0;
  float f = 0;
  double d = 0;
  if (scene->mMetaData->Get("UnitScaleFactor", d)) cm_per_unit = d;
  else if (scene->mMetaData->Get("UnitScaleFactor", f)) cm_per_unit = f;
  else return std::nullopt;
  const std::pair<double, Unit> known[] = {{0.1, Unit::Millimetre}, {1.0, Unit::Centimetre}, {100.0, Unit::Metre}, {2.54, Unit::Inch}};
  for (auto [v, u] : known)
    if (std::abs(cm_per_unit - v) < 1e-6 * v) return u;
  notes.push_back(fmt::format("FBX unit scale {} cm per unit is not mm, cm, m or in; ignored", cm_per_unit));
  return std::nullopt;
}

//! A scene's meshes flattened into one, with a range of triangles per object.
struct Flattened {
  Mesh mesh;
  std::vector<ObjectRange> objects;
  std::size_t skipped_primitives = 0;
  bool normals = true, colors = true;  // while every mesh so far has them

  //! Appends `am` placed by `xf` as an object named `name` (or the mesh's own name).
  void add(const aiMesh* am, const aiMatrix4x4& xf, const std::string& name) {
    if (!am || am->mNumVertices == 0) return;
    const auto base = static_cast<std::int64_t>(mesh.vertices.size());
    add_vertices(am, xf);
    const std::size_t first = mesh.triangles.size();
    for (unsigned f = 0; f < am->mNumFaces; ++f) {
      const aiFace& face = am->mFaces[f];
      if (face.mNumIndices != 3) {
        ++skipped_primitives;
        continue;
      }
      Tri t;
      for (int k = 0; k < 3; ++k) {
        if (face.mIndices[k] >= am->mNumVertices) throw std::runtime_error("a face refers to a vertex that does not exist");
        t[k] = static_cast<std::int32_t>(base + face.mIndices[k]);
      }
      mesh.triangles.push_back(t);
    }
    objects.push_back({name.empty() ? std::string(am->mName.C_Str()) : name, first, mesh.triangles.size() - first});
  }

 private:
  void add_vertices(const aiMesh* am, const aiMatrix4x4& xf) {
    aiMatrix3x3 nxf(xf);
    nxf.Inverse().Transpose();
    const bool identity = xf.IsIdentity();
    normals = normals && am->mNormals;
    colors = colors && am->mColors[0];
    mesh.vertices.reserve(mesh.vertices.size() + am->mNumVertices);
    if (normals) mesh.normals.reserve(mesh.normals.size() + am->mNumVertices);
    mesh.triangles.reserve(mesh.triangles.size() + am->mNumFaces);
    for (unsigned i = 0; i < am->mNumVertices; ++i) {
      const aiVector3D p = identity ? am->mVertices[i] : xf * am->mVertices[i];
      mesh.vertices.emplace_back(p.x, p.y, p.z);
      if (normals) {
        aiVector3D n = identity ? am->mNormals[i] : nxf * am->mNormals[i];
        if (!identity) n.Normalize();
        mesh.normals.emplace_back(n.x, n.y, n.z);
      }
      if (colors) mesh.colors.emplace_back(am->mColors[0][i].r, am->mColors[0][i].g, am->mColors[0][i].b);
    }
  }
};

//! Depth-first over the node tree with accumulated transforms (an explicit stack: hostile files
//! can nest deeply), then the meshes no node places.
Flattened flatten_scene(const aiScene* scene) {
  Flattened flat;
  std::vector<char> mesh_used(scene->mNumMeshes, 0);
  std::vector<std::pair<const aiNode*, aiMatrix4x4>> stack{{scene->mRootNode, scene->mRootNode->mTransformation}};
  std::size_t visited = 0;
  while (!stack.empty()) {
    auto [node, xf] = stack.back();
    stack.pop_back();
    if (++visited > 10'000'000) throw std::runtime_error("the node tree is too large or cyclic");
    for (unsigned i = 0; i < node->mNumMeshes; ++i) {
      const unsigned mi = node->mMeshes[i];
      if (mi >= scene->mNumMeshes) throw std::runtime_error("a node refers to a mesh that does not exist");
      mesh_used[mi] = 1;
      flat.add(scene->mMeshes[mi], xf, node->mName.C_Str());
    }
    for (unsigned c = node->mNumChildren; c-- > 0;)
      stack.emplace_back(node->mChildren[c], xf * node->mChildren[c]->mTransformation);
  }
  for (unsigned mi = 0; mi < scene->mNumMeshes; ++mi)
    if (!mesh_used[mi]) flat.add(scene->mMeshes[mi], aiMatrix4x4(), "");
  if (!flat.normals) flat.mesh.normals.clear();
  if (!flat.colors) flat.mesh.colors.clear();
  return flat;
}

//! The child's answer when it read the file: unit, mesh, objects and notes, as the parent reads them back.
std::string serialise(const Flattened& flat, std::optional<Unit> unit, const std::vector<std::string>& notes) {
  const Mesh& mesh = flat.mesh;
  std::string out;
  put<std::uint8_t>(out, 0);
  put<std::uint8_t>(out, unit ? static_cast<std::uint8_t>(*unit) : 255);
  put<std::uint64_t>(out, mesh.vertices.size());
  put<std::uint64_t>(out, mesh.triangles.size());
  put<std::uint8_t>(out, !mesh.normals.empty());
  put<std::uint8_t>(out, !mesh.colors.empty());
  out.append(reinterpret_cast<const char*>(mesh.vertices.data()), mesh.vertices.size() * sizeof(Vec3));
  out.append(reinterpret_cast<const char*>(mesh.normals.data()), mesh.normals.size() * sizeof(Vec3));
  out.append(reinterpret_cast<const char*>(mesh.colors.data()), mesh.colors.size() * sizeof(Vec3));
  out.append(reinterpret_cast<const char*>(mesh.triangles.data()), mesh.triangles.size() * sizeof(Tri));
  put<std::uint32_t>(out, static_cast<std::uint32_t>(flat.objects.size()));
  for (const ObjectRange& o : flat.objects) {
    put<std::uint32_t>(out, static_cast<std::uint32_t>(o.name.size()));
    out += o.name;
    put<std::uint64_t>(out, o.first_triangle);
    put<std::uint64_t>(out, o.triangle_count);
  }
  put<std::uint32_t>(out, static_cast<std::uint32_t>(notes.size()));
  for (const std::string& n : notes) {
    put<std::uint32_t>(out, static_cast<std::uint32_t>(n.size()));
    out += n;
  }
  return out;
}

//! Runs in the child: import, flatten the node tree into one mesh with object ranges, serialise.
std::string import_and_serialise(const std::filesystem::path& path, Format format) {
  Assimp::Importer importer;
  // Only triangulation: Assimp's vertex joining and normal generation cost minutes and GBs on big
  // scans; welding is done by the caller.
  const aiScene* scene = importer.ReadFile(path.string(), aiProcess_Triangulate);
  if (!scene || !scene->mRootNode) {
    std::string err = importer.GetErrorString();
    if (err.empty()) err = "the importer could not read it";
    std::string out;
    put<std::uint8_t>(out, 1);
    put<std::uint32_t>(out, static_cast<std::uint32_t>(err.size()));
    return out + err;
  }
  const Flattened flat = flatten_scene(scene);
  std::vector<std::string> notes;
  if (flat.skipped_primitives) notes.push_back(fmt::format("skipped {} point and line primitives", flat.skipped_primitives));
  std::optional<Unit> unit;
  if (format == Format::Gltf || format == Format::Glb) unit = Unit::Metre;  // glTF 2.0 §3.6: metres
  if (format == Format::Fbx) unit = fbx_unit(scene, notes);
  return serialise(flat, unit, notes);
}

void write_all(int fd, const std::string& s) {
  const char* p = s.data();
  std::size_t left = s.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

[[noreturn]] void child_main(int fd, const std::filesystem::path& path, Format format, std::size_t file_bytes) {
  // A crash must end the child quietly: the parent reports it.
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::signal(sig, SIG_DFL);
  // The importer's own diagnostics (assertion texts, warnings) are not for the user.
  if (const int devnull = ::open("/dev/null", O_WRONLY); devnull >= 0) {
    ::dup2(devnull, STDOUT_FILENO);
    ::dup2(devnull, STDERR_FILENO);
    ::close(devnull);
  }
#ifndef TRACECAST_ASAN
  // Bound memory: importers need a small multiple of the file; refuse what a hostile header asks.
  const rlim_t limit = std::max<rlim_t>(rlim_t(2) << 30, rlim_t(file_bytes) * 64);
  rlimit rl{limit, limit};
  ::setrlimit(RLIMIT_AS, &rl);
#else
  (void)file_bytes;
#endif
  std::string msg;
  try {
    msg = import_and_serialise(path, format);
  } catch (const std::bad_alloc&) {
    msg.clear();
    put<std::uint8_t>(msg, 1);
    const std::string e = "reading it needs more memory than a file of this size can justify (corrupt counts?)";
    put<std::uint32_t>(msg, static_cast<std::uint32_t>(e.size()));
    msg += e;
  } catch (const std::exception& ex) {
    msg.clear();
    put<std::uint8_t>(msg, 1);
    const std::string e = ex.what();
    put<std::uint32_t>(msg, static_cast<std::uint32_t>(e.size()));
    msg += e;
  }
  write_all(fd, msg);
  ::close(fd);
  ::_exit(0);
}

}  // namespace

RawGeometry read_with_assimp(const std::filesystem::path& path, const std::string& bytes, Format format,
                             double timeout_s) {
  if (format == Format::Glb) check_glb_container(path, bytes);
  if (format == Format::Gltf) {
    const auto j = nlohmann::json::parse(bytes, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw InputError(path, "not a glTF file (the content is not a JSON object)");
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw ProcessingError(path.string() + ": cannot create a pipe for the importer");
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw ProcessingError(path.string() + ": cannot start the importer process");
  }
  if (pid == 0) {
    ::close(fds[0]);
    child_main(fds[1], path, format, bytes.size());
  }
  ::close(fds[1]);
  std::string msg;
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  char buf[1 << 16];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    msg.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out)
    throw InputError(path, fmt::format("reading took longer than {:.0f} s and was stopped (corrupt file?)", timeout_s));
  if (WIFSIGNALED(status))
    throw InputError(path, fmt::format("the {} importer crashed on this file (signal {}): the file is damaged or not "
                                       "a valid {} file",
                                       format_name(format), WTERMSIG(status), format_name(format)));
  RawGeometry out;
  try {
    Reader r{msg};
    if (r.get<std::uint8_t>() != 0) {
      const auto len = r.get<std::uint32_t>();
      std::string why(r.bytes(len));
      for (char& c : why)
        if (c == '\n' || c == '\r') c = ' ';
      while (!why.empty() && why.back() == ' ') why.pop_back();
      throw InputError(path, "cannot read as " + format_name(format) + ": " + why);
    }
    const auto unit = r.get<std::uint8_t>();
    if (unit != 255) out.declared_unit = static_cast<Unit>(unit);
    const auto nv = r.get<std::uint64_t>(), nf = r.get<std::uint64_t>();
    const bool hn = r.get<std::uint8_t>(), hc = r.get<std::uint8_t>();
    if (nv > msg.size() / sizeof(Vec3) || nf > msg.size() / sizeof(Tri)) throw std::runtime_error("bad counts");
    auto take = [&](std::vector<Vec3>& v, std::size_t n) {
      const auto b = r.bytes(n * sizeof(Vec3));
      v.resize(n);
      for (std::size_t i = 0; i < n; ++i) {
        double xyz[3];
        std::memcpy(xyz, b.data() + i * sizeof(xyz), sizeof(xyz));
        v[i] = Vec3(xyz[0], xyz[1], xyz[2]);
      }
    };
    take(out.mesh.vertices, nv);
    if (hn) take(out.mesh.normals, nv);
    if (hc) take(out.mesh.colors, nv);
    out.mesh.triangles.resize(nf);
    const auto tb = r.bytes(nf * sizeof(Tri));
    if (nf > 0) std::memcpy(out.mesh.triangles.data(), tb.data(), tb.size());
    const auto no = r.get<std::uint32_t>();
    for (std::uint32_t i = 0; i < no; ++i) {
      ObjectRange o;
      o.name = std::string(r.bytes(r.get<std::uint32_t>()));
      o.first_triangle = r.get<std::uint64_t>();
      o.triangle_count = r.get<std::uint64_t>();
      out.objects.push_back(std::move(o));
    }
    const auto nn = r.get<std::uint32_t>();
    for (std::uint32_t i = 0; i < nn; ++i) out.notes.emplace_back(r.bytes(r.get<std::uint32_t>()));
  } catch (const InputError&) {
    throw;
  } catch (const std::exception&) {
    throw InputError(path, fmt::format("the {} importer stopped without a result (exit status {}): the file is "
                                       "damaged or too large",
                                       format_name(format), WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  }
  out.needs_weld = true;  // primitives are stored with split vertices
  if (format == Format::ThreeMf) {
    ThreeMfInfo info = read_3mf_info(path);
    out.declared_unit = info.unit;
    // Assimp names 3MF nodes "Object_<id>"; give them the names the file declares.
    for (ObjectRange& o : out.objects)
      for (const auto& [id, name] : info.names)
        if (o.name == "Object_" + id) o.name = unescape_xml(name);
  }
  return out;
}

// ------------------------------------------------------------------------------ GLB container
void check_glb_container(const std::filesystem::path& path, const std::string& bytes) {
  ByteCursor in(bytes, path);
  if (bytes.size() < 12 || bytes.compare(0, 4, "glTF") != 0)
    throw InputError(path, "not a GLB file (it does not start with the 'glTF' magic)");
  in.skip(4, "the header");
  const auto version = in.get<std::uint32_t>("the header");
  const auto length = in.get<std::uint32_t>("the header");
  if (version != 2) throw InputError(path, fmt::format("GLB version {} is not supported (only glTF 2.0)", version));
  if (length != bytes.size())
    throw InputError(path, fmt::format("GLB header declares {} bytes but the file has {} bytes: the file is truncated "
                                       "or was damaged in transfer (for example re-encoded as text)",
                                       length, bytes.size()));
  const auto json_len = in.get<std::uint32_t>("the JSON chunk header");
  const auto json_type = in.get<std::uint32_t>("the JSON chunk header");
  if (json_type != 0x4E4F534Au) throw InputError(path, "GLB's first chunk is not JSON");
  const std::string_view json_text = in.bytes(json_len, "the JSON chunk");
  std::uint64_t bin_len = 0;
  bool has_bin = false;
  if (in.remaining() >= 8) {
    bin_len = in.get<std::uint32_t>("the BIN chunk header");
    const auto type = in.get<std::uint32_t>("the BIN chunk header");
    if (type == 0x004E4942u) {
      in.bytes(bin_len, "the BIN chunk");
      has_bin = true;
    }
  }
  const auto j = nlohmann::json::parse(json_text.begin(), json_text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw InputError(path, "GLB's JSON chunk is not valid JSON");
  // Every accessor must lie inside its buffer view, every view inside its buffer, and the
  // embedded buffer inside the BIN chunk: no parser is then asked to read past the data.
  auto uint_of = [&](const nlohmann::json& o, const char* key, std::uint64_t dflt) -> std::uint64_t {
    if (!o.contains(key)) return dflt;
    const auto& v = o[key];
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0))
      throw InputError(path, fmt::format("GLB JSON: '{}' is not a non-negative integer", key));
    return v.get<std::uint64_t>();
  };
  std::vector<std::uint64_t> buffer_len;
  if (j.contains("buffers") && j["buffers"].is_array())
    for (const auto& b : j["buffers"]) {
      if (!b.is_object()) throw InputError(path, "GLB JSON: a buffer is not an object");
      const std::uint64_t n = uint_of(b, "byteLength", 0);
      if (!b.contains("uri") && (!has_bin || n > bin_len))
        throw InputError(path, fmt::format("GLB buffer of {} bytes does not fit the {}-byte BIN chunk", n, bin_len));
      buffer_len.push_back(n);
    }
  std::vector<std::pair<std::uint64_t, std::uint64_t>> views;  // length, stride
  if (j.contains("bufferViews") && j["bufferViews"].is_array())
    for (const auto& v : j["bufferViews"]) {
      if (!v.is_object()) throw InputError(path, "GLB JSON: a bufferView is not an object");
      const std::uint64_t b = uint_of(v, "buffer", ~0ull), off = uint_of(v, "byteOffset", 0), len = uint_of(v, "byteLength", 0);
      if (b >= buffer_len.size() || off > buffer_len[b] || len > buffer_len[b] - off)
        throw InputError(path, "GLB JSON: a bufferView lies outside its buffer");
      views.emplace_back(len, uint_of(v, "byteStride", 0));
    }
  if (j.contains("accessors") && j["accessors"].is_array())
    for (const auto& a : j["accessors"]) {
      if (!a.is_object()) throw InputError(path, "GLB JSON: an accessor is not an object");
      if (!a.contains("bufferView")) continue;
      const std::uint64_t v = uint_of(a, "bufferView", ~0ull), off = uint_of(a, "byteOffset", 0),
                          count = uint_of(a, "count", 0), ct = uint_of(a, "componentType", 5126);
      const std::string type = a.contains("type") && a["type"].is_string() ? a["type"].get<std::string>() : "SCALAR";
      const std::uint64_t comps = type == "VEC2" ? 2 : type == "VEC3" ? 3 : type == "VEC4" ? 4 : type == "MAT4" ? 16 : 1;
      const std::uint64_t csize = (ct == 5120 || ct == 5121) ? 1 : (ct == 5122 || ct == 5123) ? 2 : 4;
      if (v >= views.size()) throw InputError(path, "GLB JSON: an accessor refers to a bufferView that does not exist");
      const std::uint64_t elem = comps * csize, stride = views[v].second ? views[v].second : elem;
      if (count > 0 && (off > views[v].first || count > (1ull << 40) ||
                        (count - 1) * stride + elem > views[v].first - off))
        throw InputError(path, fmt::format("GLB JSON: an accessor of {} elements runs past the end of its bufferView", count));
    }
}

ThreeMfInfo read_3mf_info(const std::filesystem::path& path) {
  ThreeMfInfo info;
  unzFile z = unzOpen(path.c_str());
  if (!z) return info;
  std::string model;
  unz_file_info fi{};
  if (unzLocateFile(z, "3D/3dmodel.model", 2) == UNZ_OK && unzGetCurrentFileInfo(z, &fi, nullptr, 0, nullptr, 0, nullptr, 0) == UNZ_OK &&
      unzOpenCurrentFile(z) == UNZ_OK) {
    char buf[1 << 16];
    int n;
    // The declared size may lie; read what inflates, up to 1 GB.
    while ((n = unzReadCurrentFile(z, buf, sizeof buf)) > 0 && model.size() < (1u << 30))
      model.append(buf, static_cast<std::size_t>(n));
    unzCloseCurrentFile(z);
  }
  unzClose(z);
  auto attribute = [&](std::size_t tag, std::size_t end, const char* name) -> std::optional<std::string> {
    const std::string key = std::string(" ") + name + "=\"";
    const auto at = model.find(key, tag);
    if (at == std::string::npos || at > end) return std::nullopt;
    const auto close = model.find('"', at + key.size());
    if (close == std::string::npos || close > end) return std::nullopt;
    return model.substr(at + key.size(), close - at - key.size());
  };
  const auto m = model.find("<model");
  if (m != std::string::npos) {
    const auto end = model.find('>', m);
    if (const auto u = attribute(m, end, "unit")) {
      info.unit = parse_unit(*u);  // micron and foot: not among our units, left to the guess
    } else {
      info.unit = Unit::Millimetre;  // 3MF core specification: the default unit
    }
  }
  for (auto o = model.find("<object"); o != std::string::npos; o = model.find("<object", o + 7)) {
    const auto end = model.find('>', o);
    if (end == std::string::npos) break;
    const auto id = attribute(o, end, "id");
    const auto name = attribute(o, end, "name");
    if (id && name) info.names.emplace_back(*id, *name);
  }
  return info;
}

}  // namespace tracecast::io::detail
