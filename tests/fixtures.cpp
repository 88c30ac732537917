#include "fixtures.h"

#include <unistd.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace tracecast::test {

namespace {
constexpr double kPi = 3.14159265358979323846;
}

Mesh cube(double s, Vec3 o) {
  Mesh m;
  for (int i = 0; i < 8; ++i) m.vertices.push_back(o + s * Vec3(i & 1, (i >> 1) & 1, (i >> 2) & 1));
  // Outward-facing (CCW seen from outside).
  m.triangles = {{0, 2, 1}, {1, 2, 3}, {4, 5, 6}, {5, 7, 6}, {0, 1, 4}, {1, 5, 4},
                 {2, 6, 3}, {3, 6, 7}, {0, 4, 2}, {2, 4, 6}, {1, 3, 5}, {3, 7, 5}};
  return m;
}

Mesh uv_sphere(double radius, int rings, int segments) {
  Mesh m;
  m.vertices.push_back({0, 0, radius});
  for (int i = 1; i < rings; ++i) {
    const double th = kPi * i / rings;
    for (int j = 0; j < segments; ++j) {
      const double ph = 2 * kPi * j / segments;
      m.vertices.push_back(radius * Vec3(std::sin(th) * std::cos(ph), std::sin(th) * std::sin(ph), std::cos(th)));
    }
  }
  m.vertices.push_back({0, 0, -radius});
  const int south = static_cast<int>(m.vertices.size()) - 1;
  auto at = [&](int ring, int seg) { return 1 + (ring - 1) * segments + (seg % segments); };
  for (int j = 0; j < segments; ++j) m.triangles.push_back({0, at(1, j), at(1, j + 1)});
  for (int i = 1; i < rings - 1; ++i)
    for (int j = 0; j < segments; ++j) {
      m.triangles.push_back({at(i, j), at(i + 1, j), at(i + 1, j + 1)});
      m.triangles.push_back({at(i, j), at(i + 1, j + 1), at(i, j + 1)});
    }
  for (int j = 0; j < segments; ++j) m.triangles.push_back({south, at(rings - 1, j + 1), at(rings - 1, j)});
  return m;
}

Mesh torus(double R, double r, int n, int k) {
  Mesh m;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < k; ++j) {
      const double u = 2 * kPi * i / n, v = 2 * kPi * j / k;
      m.vertices.push_back({(R + r * std::cos(v)) * std::cos(u), (R + r * std::cos(v)) * std::sin(u), r * std::sin(v)});
    }
  auto at = [&](int i, int j) { return (i % n) * k + (j % k); };
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < k; ++j) {
      m.triangles.push_back({at(i, j), at(i + 1, j), at(i + 1, j + 1)});
      m.triangles.push_back({at(i, j), at(i + 1, j + 1), at(i, j + 1)});
    }
  return m;
}

Mesh bipyramid(double r, double h, int n) {
  Mesh m;
  for (int k = 0; k < n; ++k) m.vertices.emplace_back(r * std::cos(2 * kPi * k / n), r * std::sin(2 * kPi * k / n), 0.0);
  m.vertices.emplace_back(0, 0, h);
  m.vertices.emplace_back(0, 0, -h);
  for (int k = 0; k < n; ++k) {
    const int a = k, b = (k + 1) % n;
    m.triangles.push_back({a, b, n});
    m.triangles.push_back({b, a, n + 1});
  }
  return m;
}

Mesh disk(double radius, int segments) {
  Mesh m;
  m.vertices.push_back(Vec3::Zero());
  for (int j = 0; j < segments; ++j) {
    const double a = 2 * kPi * j / segments;
    m.vertices.push_back(radius * Vec3(std::cos(a), std::sin(a), 0));
  }
  for (int j = 0; j < segments; ++j) m.triangles.push_back({0, 1 + j, 1 + (j + 1) % segments});
  return m;
}

Mesh with_colors_and_normals(Mesh m) {
  m.normals.clear();
  m.colors.clear();
  const Aabb b = bounding_box(m);
  for (const Vec3& p : m.vertices) {
    const Vec3 c = p - 0.5 * (b.min + b.max);
    m.normals.push_back(c.norm() > 0 ? Vec3(c.normalized()) : Vec3(0, 0, 1));
    // Multiples of 1/255 so that 8-bit colour formats round-trip exactly.
    const Vec3 t = (p - b.min).cwiseQuotient(b.extent().cwiseMax(1e-9));
    m.colors.push_back((t * 255.0).array().round().matrix() / 255.0);
  }
  return m;
}

std::optional<std::filesystem::path> shared_scans() {
  const std::filesystem::path p = std::filesystem::path(TRACECAST_SOURCE_DIR) / ".." / "shared" / "scans";
  if (std::filesystem::is_directory(p)) return std::filesystem::canonical(p);
  return std::nullopt;
}

std::filesystem::path temp_dir(const std::string& name) {
  static const std::filesystem::path root = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tracecast-test-XXXXXX").string();
    const char* d = ::mkdtemp(tmpl.data());
    return std::filesystem::path(d ? d : "/tmp");
  }();
  static struct Cleanup {
    ~Cleanup() {
      std::error_code ec;
      if (root.filename().string().rfind("tracecast-test-", 0) == 0) std::filesystem::remove_all(root, ec);
    }
  } cleanup;
  const std::filesystem::path p = root / name;
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

double max_corner_distance(const Mesh& a, const Mesh& b) {
  if (a.triangles.size() != b.triangles.size()) return std::numeric_limits<double>::infinity();
  double d = 0;
  for (std::size_t f = 0; f < a.triangles.size(); ++f)
    for (int k = 0; k < 3; ++k)
      d = std::max(d, (a.vertices[a.triangles[f][k]] - b.vertices[b.triangles[f][k]]).norm());
  return d;
}

}  // namespace tracecast::test
