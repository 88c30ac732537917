// Reading and writing meshes and point clouds, the format picked by file extension.
//
// Readers are strict: they never crash or allocate more than the file can justify, and every
// problem (truncation, wrong header, NaN, index out of range, absurd counts) is an InputError
// whose message names the file and the problem. Writers go through a temporary file and a
// rename, so a failed write never leaves a truncated file or clobbers an existing one.
//
// Read:  PLY (ascii, binary LE/BE; faces as polygons or triangle strips), STL (ascii, binary),
//        OBJ, OFF, glTF/GLB, FBX, 3MF; point clouds from PLY, PCD, XYZ, PTS (and any mesh).
// Write: PLY (binary by default), STL (binary by default), OBJ, 3MF (several named objects,
//        unit millimetre), GLB (metres, as glTF requires); point clouds to PLY and XYZ.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tracecast/mesh/mesh.h"
#include "tracecast/mesh/units.h"

namespace tracecast::io {

enum class Format { Ply, Stl, Obj, Off, Gltf, Glb, Fbx, ThreeMf, Pcd, Xyz, Pts };

std::string format_name(Format f);  //!< lower-case extension-like name: "ply", "3mf", …
//! Parses a name such as "ply" or ".PLY"; nullopt if unknown.
std::optional<Format> parse_format(const std::string& name);
//! Format from the file's extension; throws InputError listing the known extensions if none fits.
Format format_from_path(const std::filesystem::path& path);
bool can_write_mesh(Format f);
bool can_write_point_cloud(Format f);
//! Extensions (".ply", …) accepted for reading, in a stable order, for help texts.
std::vector<std::string> readable_extensions();

struct ReadOptions {
  std::optional<Format> format;  //!< overrides the extension
  Unit units = Unit::Auto;       //!< unit of the file's coordinates; Auto = declared or guessed
  bool weld = true;              //!< merge bit-identical vertices (STL, split glTF/FBX/3MF primitives)
  double importer_timeout_s = 300.0;  //!< limit for the isolated importer (glTF, FBX, 3MF)
};

//! One object of a multi-object file: a run of triangles in the merged mesh.
struct ObjectRange {
  std::string name;
  std::size_t first_triangle = 0;
  std::size_t triangle_count = 0;
};

struct Geometry {
  Mesh mesh;  //!< in mm; triangles empty when the file holds points only
  Format format = Format::Ply;
  UnitGuess units;
  std::vector<ObjectRange> objects;
  std::size_t vertices_in_file = 0;   //!< before welding
  std::size_t welded_vertices = 0;    //!< removed by welding
  std::vector<std::string> notes;     //!< things a user may want to know (dropped degenerate strips, …)

  bool has_faces() const { return !mesh.triangles.empty(); }
};

//! The file's objects as separate meshes (each with only the vertices it uses); a file of one
//! object (or of unnamed triangles) gives one mesh named `fallback_name`.
std::vector<NamedMesh> split_objects(const Geometry& g, const std::string& fallback_name);

//! Reads any supported file; a file without faces gives a point set (mesh with no triangles).
Geometry read_geometry(const std::filesystem::path& path, const ReadOptions& options = {});
//! As read_geometry, but a file without faces is an InputError ("no faces").
Geometry read_mesh(const std::filesystem::path& path, const ReadOptions& options = {});
//! Points of any supported file (the vertices of a mesh file).
PointCloud read_point_cloud(const std::filesystem::path& path, const ReadOptions& options = {},
                            UnitGuess* units = nullptr);

struct WriteOptions {
  std::optional<Format> format;  //!< overrides the extension
  bool ascii = false;            //!< PLY and STL: text instead of binary
  bool double_precision = false; //!< PLY: store coordinates as double (lossless) instead of float
  bool declare_mm = true;        //!< PLY: a "units: millimetres" comment (which tracecast's reader honours);
                                 //!< off for data deliberately in another unit (simulated scans)
};

void write_mesh(const std::filesystem::path& path, const Mesh& mesh, const WriteOptions& options = {});
//! Several named objects: separate objects in 3MF, OBJ and GLB; merged into one in PLY and STL.
void write_objects(const std::filesystem::path& path, const std::vector<NamedMesh>& objects,
                   const WriteOptions& options = {});
void write_point_cloud(const std::filesystem::path& path, const PointCloud& cloud, const WriteOptions& options = {});

}  // namespace tracecast::io
