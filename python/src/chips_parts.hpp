// chips_parts.hpp: the parts of snip._chips, one binder per file (chips_*.cpp), and what
// they share: the Python-side owners of datasets and proposals, read-only NumPy views on
// C++ memory kept alive by their owner, flags and choice arguments, JSON <-> Python.
#pragma once

#include "common.hpp"

#include <snip/io/coco.hpp>
#include <snip/sniper/dataset.hpp>
#include <snip/sniper/plan.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace snip {
struct plan_config;
struct image_record;
struct image_proposals;
struct chip;
struct scale_plan;
struct image_plan;
struct image_chips_plan;
struct chip_geometry;
struct pixel_budget;
struct tune_options;
struct config_metrics;
struct tune_candidate;
struct tune_result;
} // namespace snip

// The casters of the classes of namespace snip bound here, named by their Python names.
// pybind11 builds signatures with an unqualified concat(descr<N, T...>...), and for a T of
// namespace snip argument-dependent lookup also finds snip::concat (a forwarding
// template that wins): a caster whose name does not carry T keeps T out of that call.
#define SNIP_PY_NAMED_CASTER(T, py_name)                                                          \
    namespace pybind11::detail {                                                                  \
    template <>                                                                                   \
    class type_caster<T> : public type_caster_base<T> {                                           \
    public:                                                                                       \
        static constexpr auto name = const_name(py_name);                                         \
    };                                                                                            \
    }
SNIP_PY_NAMED_CASTER(snip::plan_config, "PlanConfig")
SNIP_PY_NAMED_CASTER(snip::image_record, "ImageRecord")
SNIP_PY_NAMED_CASTER(snip::image_proposals, "ImageProposals")
SNIP_PY_NAMED_CASTER(snip::chip, "Chip")
SNIP_PY_NAMED_CASTER(snip::scale_plan, "ScalePlan")
SNIP_PY_NAMED_CASTER(snip::image_plan, "ImagePlan")
SNIP_PY_NAMED_CASTER(snip::image_chips_plan, "ImageChipsPlan")
SNIP_PY_NAMED_CASTER(snip::chip_geometry, "ChipGeometry")
SNIP_PY_NAMED_CASTER(snip::pixel_budget, "PixelBudget")
SNIP_PY_NAMED_CASTER(snip::tune_options, "TuneOptions")
SNIP_PY_NAMED_CASTER(snip::config_metrics, "ConfigMetrics")
SNIP_PY_NAMED_CASTER(snip::tune_candidate, "TuneCandidate")
SNIP_PY_NAMED_CASTER(snip::tune_result, "TuneResult")
#undef SNIP_PY_NAMED_CASTER

namespace snip::py {

/// A dataset as Python holds it (class Dataset): the images and categories, and the load
/// report when it was read from a COCO file. Held by shared_ptr; never resized from Python,
/// so the NumPy views of its records stay valid while it lives.
struct py_dataset {
    snip::dataset ds;
    std::optional<snip::io::load_report> report;
};

/// Proposals of every image of a dataset (class Proposals), same order as its images.
struct py_proposals {
    std::vector<snip::image_proposals> lists;
};

/// A read-only NumPy array over `n` rows of `cols` T's at `data` (rows packed; cols == 0:
/// a 1-D array of n) whose base is `owner`: no copy; the owner (the Python object holding
/// the memory) lives as long as the array.
template <class T>
pyb::array view_array(const T* data, std::size_t n, std::size_t cols, pyb::handle owner) {
    std::vector<pyb::ssize_t> shape{static_cast<pyb::ssize_t>(n)};
    std::vector<pyb::ssize_t> strides{static_cast<pyb::ssize_t>(sizeof(T) * (cols ? cols : 1))};
    if (cols) {
        shape.push_back(static_cast<pyb::ssize_t>(cols));
        strides.push_back(static_cast<pyb::ssize_t>(sizeof(T)));
    }
    pyb::array a;
    if (n == 0 || data == nullptr) {
        a = pyb::array(pyb::dtype::of<T>(), shape, strides); // empty: nothing to share
    } else {
        a = pyb::array(pyb::dtype::of<T>(), shape, strides, data, owner);
    }
    pyb::detail::array_proxy(a.ptr())->flags &= ~pyb::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return a;
}

/// A vector as a read-only 1-D view owned by `owner`.
template <class T>
pyb::array view_of(const std::vector<T>& v, pyb::handle owner) {
    return view_array(v.data(), v.size(), 0, owner);
}

/// A vector of boxes as a read-only (N, 4) view owned by `owner`.
template <class T>
pyb::array boxes_view_of(const std::vector<snip::box<T>>& v, pyb::handle owner) {
    static_assert(sizeof(snip::box<T>) == 4 * sizeof(T));
    return view_array(reinterpret_cast<const T*>(v.data()), v.size(), 4, owner);
}

/// Copies a vector into a new owning 1-D array.
template <class T>
pyb::array_t<T> array_copy(const std::vector<T>& v) {
    std::vector<T> c(v);
    const auto n = static_cast<pyb::ssize_t>(c.size());
    return to_array(std::move(c), {n});
}

/// Optional per-box flags (crowd / ignore): None -> empty; else a 1-D array-like of `n`
/// bools or integers (non-zero = set). Raises ValueError naming `what` otherwise.
std::vector<std::uint8_t> flags_of(const pyb::object& flags, std::ptrdiff_t n, const char* what);

/// A 1-D sequence of integers as a vector<int> (None -> empty); `what` names it in errors.
std::vector<int> ints_of(const pyb::object& v, const char* what);

/// A boxes argument: an ndarray is used as is (float32/float64 of any strides, read in
/// place; another dtype is refused by with_boxes); anything else (a list) becomes float64.
pyb::array boxes_arg(const pyb::object& v, const char* what);

/// (N, 4) float32/float64 boxes copied into xyxy doubles (None -> empty).
std::vector<snip::box<double>> boxes_copy(const pyb::object& boxes, const char* what);

/// "continuous" | "inclusive", "aligned" | "sniper" (snip::error naming `what` and the value).
snip::pixel_convention convention_of(const std::string& s, const std::string& what);
snip::chip_layout layout_of(const std::string& s, const std::string& what);
/// A Python object (dict, list, tuple, str, bool, int, float, None, NumPy scalars and
/// arrays) as JSON; `what` names the argument in errors.
nlohmann::json to_json_value(pyb::handle v, const std::string& what);
/// JSON as Python objects (dict, list, str, bool, int, float, None).
pyb::object from_json_value(const nlohmann::json& j);

/// The planning scratch memory of the calling thread (grids are cached across calls).
snip::plan_workspace& thread_workspace();

/// PlanConfig, presets, JSON (chips_config.cpp)
void bind_chips_config(pyb::module_& m);
/// ImageRecord, Dataset, read_coco, ImageProposals, Proposals, read_proposals (chips_data.cpp)
void bind_chips_data(pyb::module_& m);
/// Chip, ScalePlan, ImagePlan, ImageChipsPlan, plan_image, plan_dataset, mine_negatives,
/// sample_negatives, epoch_stride (chips_plan.cpp)
void bind_chips_plan(pyb::module_& m);
/// GtState, ChipGT, assign_chip (chips_gt.cpp)
void bind_chips_gt(pyb::module_& m);
/// read_image, ChipGeometry, chip_crop, cut_chip (chips_image.cpp)
void bind_chips_image(pyb::module_& m);
/// PixelBudget, count_pixels, report (chips_report.cpp)
void bind_chips_report(pyb::module_& m);
/// TuneOptions, ConfigMetrics, TuneCandidate, TuneResult, tune, evaluate_config,
/// dataset_warnings (chips_tune.cpp)
void bind_chips_tune(pyb::module_& m);
/// ChipsFile, make_chips_file, write_chips, read_chips (chips_io.cpp)
void bind_chips_io(pyb::module_& m);
/// _box_view_info (chips_plan.cpp)
void bind_chips_testing(pyb::module_& m);

} // namespace snip::py
