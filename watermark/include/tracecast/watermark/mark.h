// The mark itself: stamping an identifier into the outer surface of an appliance, and reading it
// back, blind, from a scan of a cast (method: docs/methods/watermark.md).
//
// The mark is a keyed tile pattern of 16 × 16 cells of 1.2 mm, repeated on a square lattice in a
// plane across the piece's forward direction and extruded along it, applied as a displacement
// along the surface normal of a few tens of micrometres. Every tile carries the whole codeword
// (payload.h, rate 1/2: 204 cells) and 52 keyed synchronisation cells. The detector high-passes
// the scan (a local quadric fit), finds the lattice (forward direction, rotation, scale) from the
// residual's autocorrelation and refines it in 3D, folds every sample of the scan into one tile,
// aligns the tile with the keyed synchronisation cells, and decodes the soft cell values. An
// identifier is reported only if its CRC matches.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tracecast/mesh/mesh.h"
#include "tracecast/mesh/options.h"
#include "tracecast/watermark/key.h"

namespace tracecast::watermark {

struct StampOptions {
  double max_displacement_mm = 0.040;   //!< largest normal displacement anywhere
  std::optional<Vec3> front;            //!< the piece's forward direction; found from the shape if unset
  double resolution_mm = 0.3;           //!< marked triangles are split until no edge is longer
  double full_thickness_mm = 1.0;       //!< full amplitude where the piece is at least this thick …
  double zero_thickness_mm = 0.4;       //!< … fading to none at this thickness (the feathered rim)
  bool roughness_shaping = true;        //!< more amplitude in textured areas, less on smooth ones
};

//! The stamp's options (`tracecast stamp`): keys, units, defaults, ranges.
const OptionTable<StampOptions>& stamp_option_table();

struct StampReport {
  Vec3 front = Vec3::UnitZ();           //!< forward direction the pattern is extruded along
  std::string key_id;
  std::uint64_t id = 0;
  double marked_area_mm2 = 0;           //!< outer surface with a non-zero amplitude
  double max_displacement_um = 0;
  double rms_displacement_um = 0;       //!< over the marked area
  double hausdorff_mm = -1;             //!< two-way, stamped vs original surface; -1: not measured
  std::size_t vertices_before = 0, vertices_after = 0;
  std::size_t split_edges = 0;
  double tiles = 0;                     //!< marked area / tile area: how many full codewords it holds
  std::vector<std::string> warnings;    //!< e.g. a piece too small for its mark to be read back reliably
  std::vector<std::pair<std::string, double>> timings;
};

//! The stamp report (docs/formats.md#stamp-report); `hausdorff_mm` null when not measured.
void to_json(nlohmann::json& j, const StampReport& r);

struct Stamped {
  Mesh mesh;
  std::vector<std::uint32_t> face_origin;  //!< per face of `mesh`: the appliance's face it is (a piece of)
  std::vector<double> displacement_mm;  //!< per vertex of `mesh` (signed, along the outer normal)
  StampReport report;
};

//! What does not depend on the identifier (outer surface, amplitude, refinement): plan once, stamp
//! many identifiers (a production run of one design). Same errors as stamp().
struct StampPlan;
std::shared_ptr<const StampPlan> plan_stamp(const Mesh& appliance, const StampOptions& options = {});
//! `hausdorff`: measure the two-way distance (the slowest figure of the report).
Stamped apply_stamp(const StampPlan& plan, std::uint64_t id, const Key& key, bool hausdorff = true);

//! Stamps `id` under `key` into the outer surface of a closed appliance (mm). Throws InputError if
//! the piece is not a closed surface or has no outer surface thick enough to carry the mark.
Stamped stamp(const Mesh& appliance, std::uint64_t id, const Key& key, const StampOptions& options = {});

enum class Outcome {
  found,                 //!< an identifier whose CRC matches: exit 0
  no_mark,               //!< enough surface, but no mark under this key: exit 5
  insufficient_surface,  //!< too small, too sparse or too coarse to carry a mark at all: exit 6
};

struct DetectOptions {
  double spacing_mm = 0.3;    //!< resampling of the scan (in mm after the unit guess)
  std::uint64_t seed = 1;     //!< for the area sampling of meshes
};
//! The reading's options (`tracecast detect`, `tracecast trace`).
const OptionTable<DetectOptions>& detect_option_table();

struct Detection {
  Outcome outcome = Outcome::no_mark;
  std::string reason;                   //!< one line: why not found, or what was found
  std::uint64_t id = 0;                 //!< only meaningful when outcome == found
  double confidence = 0;                //!< agreement of the soft cell values with the decoded codeword, 0 … 1
  double bit_error_rate = 0;            //!< cells whose sign the decoded codeword contradicts
  double lattice_contrast = 0;          //!< fold energy at the lattice found over that at an unrelated one (1: no lattice)
  double sync_z = 0;                    //!< synchronisation peak in standard deviations of the other shifts
  double false_positive_bound = 0;      //!< probability that a surface without this mark returns an identifier
  double unit_factor = 1;               //!< the scan's unit guessed as this many mm
  double scale = 1;                     //!< size of the pattern in the scan relative to the stamp (after the unit)
  Vec3 front = Vec3::UnitZ();           //!< forward direction found, in scan coordinates
  double area_mm2 = 0;                  //!< surface examined (mm², after the unit guess)
  double carrier_area_mm2 = 0;          //!< of which the area whose cells agree with the decoded codeword
  Aabb carrier_box;                     //!< where that area lies, in scan coordinates
  std::size_t samples = 0;
  std::vector<double> soft;             //!< soft value per coded bit (positive: 1), for diagnostics
  std::vector<std::pair<std::string, double>> timings;
};

//! The key-independent part of detection (the scan high-passed, the lattice found, every sample
//! folded into one tile): analyse once, read under as many keys as a workshop holds.
struct AnalysisState;
struct Analysis {
  Detection base;                              //!< outcome set when there is nothing to read
  std::shared_ptr<const AnalysisState> state;  //!< null then
};
Analysis analyze(const std::vector<Vec3>& points, const DetectOptions& options = {});
Analysis analyze(const Mesh& scan, const DetectOptions& options = {});
//! The analysis as data (docs/formats.md#mark-analysis): the folded tile (per bin of one 19.2 mm
//! tile, the sum and count of the high-passed relief) and the figures the reading reports; no
//! coordinate of the scan. read() of it finds the same identifier with the same figures, except
//! the carrier's area and box, which need the samples (0 and empty).
nlohmann::json analysis_to_json(const Analysis& analysis);
//! InputError naming the field that is missing, of the wrong type or out of range.
Analysis analysis_from_json(const nlohmann::json& j);
//! Aligns the folded tile with the key's sync cells and decodes; `found` only if the CRC matches.
Detection read(const Analysis& analysis, const Key& key);

//! A reading under several keys (a workshop's, or every enrolled workshop's): each key in turn on
//! the one analysis, up to the first that finds the mark. `key` is that key's index (0 when none
//! does: the first key's reading then stands for all). A found mark's false-positive bound is
//! multiplied by the keys tried: a random surface has that many chances to pass one.
struct KeyedReading {
  Detection detection;
  std::size_t key = 0;
  std::size_t keys_tried = 0;
};
KeyedReading read_under_keys(const Analysis& analysis, const std::vector<Key>& keys);

//! Reads a mark from a scan given as points (any pose, unit, sampling; possibly partial).
Detection detect(const std::vector<Vec3>& points, const Key& key, const DetectOptions& options = {});
//! The same from a triangle mesh (sampled by area).
Detection detect(const Mesh& scan, const Key& key, const DetectOptions& options = {});

const char* outcome_name(Outcome o);

//! A detection as the detection report holds it (docs/formats.md#detection-report), without the
//! caller's fields (input, keys).
void to_json(nlohmann::json& j, const Detection& d);

}  // namespace tracecast::watermark
