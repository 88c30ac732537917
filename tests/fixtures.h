// Procedural meshes with known properties, and helpers shared by the tests.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "tracecast/mesh/mesh.h"

namespace tracecast::test {

Mesh cube(double size = 1.0, Vec3 origin = Vec3::Zero());        //!< closed, genus 0, 12 triangles
Mesh uv_sphere(double radius, int rings, int segments);           //!< closed, genus 0
Mesh torus(double R, double r, int n, int m);                     //!< closed, genus 1
Mesh disk(double radius, int segments);                           //!< open, 1 boundary loop
//! Closed flat double pyramid: a regular n-gon of radius r in z = 0, apexes at ±h; its rim is a
//! knife edge (faces meeting at 2·atan(h/r)), the shape of a feathered appliance edge.
Mesh bipyramid(double r, double h, int n);
Mesh with_colors_and_normals(Mesh m);                             //!< adds deterministic attributes

//! The third-party scans folder (../shared/scans beside the project), if present.
std::optional<std::filesystem::path> shared_scans();

//! A fresh empty folder for one test (removed at exit of the process).
std::filesystem::path temp_dir(const std::string& name);

std::string read_bytes(const std::filesystem::path& p);
void write_bytes(const std::filesystem::path& p, const std::string& bytes);

//! Largest distance between corresponding triangle corners of a and b (same face order).
double max_corner_distance(const Mesh& a, const Mesh& b);

}  // namespace tracecast::test
