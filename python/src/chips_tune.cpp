// chips_tune.cpp: choosing scales and valid ranges in snip._chips: TuneOptions,
// ConfigMetrics, TuneCandidate, TuneResult, tune, evaluate_config, dataset_warnings
// (snip/sniper/tune.hpp, as `snip-chips tune` uses them).
#include "chips_parts.hpp"

#include <snip/io/chips_json.hpp>
#include <snip/sniper/tune.hpp>

#include <exception>

namespace snip::py {

namespace {

const char* cost_name(snip::tune_cost c) { return c == snip::tune_cost::padded ? "padded" : "cut"; }

void set_options(pyb::object& self, const pyb::dict& kw) {
    for (auto kv : kw) {
        const auto key = kv.first.cast<std::string>();
        if (key == "progress" || !pyb::hasattr(self, key.c_str()))
            throw pyb::type_error(snip::concat("TuneOptions: unknown option '", key, "' (options: cost, band, "
                                               "max_upscale, min_factor, grid_points, long_side_scale, "
                                               "min_chip_fill, min_scales, max_scales, overlap, min_valid_share, "
                                               "good_tolerance, pixel_budget, sample_images, seed, chip_size, "
                                               "stride, finest_min_side, threads)"));
        pyb::setattr(self, key.c_str(), kv.second);
    }
}

snip::plan_config reference_of(const pyb::object& r) {
    if (PyUnicode_Check(r.ptr())) return snip::plan_config::preset(r.cast<std::string>());
    return r.cast<snip::plan_config>();
}

} // namespace

void bind_chips_tune(pyb::module_& m) {
    using snip::tune_options;
    pyb::class_<tune_options> to(m, "TuneOptions", R"doc(Options of tune() (snip::tune_options); keyword arguments of the constructor set any field.

cost: 'padded' (chips x chip_size^2, default) or 'cut' (chip area as cut); band: (lo, hi)
object sizes the detector handles well after scaling, px (32, 150); max_upscale (3.0);
min_factor (0.25); grid_points (12); long_side_scale (True); min_chip_fill (0.5);
min_scales, max_scales (1, 4); overlap (0.2); min_valid_share (1.0); good_tolerance
(0.02); pixel_budget (None or px per image); sample_images (1000); seed (0); chip_size,
stride (512, 32); finest_min_side (1.0); threads (0: all cores).)doc");
    to.def(pyb::init([](const pyb::kwargs& kw) {
               pyb::object self = pyb::cast(tune_options{});
               set_options(self, kw);
               self.cast<const tune_options&>().validate();
               return self.cast<tune_options>();
           }),
           "TuneOptions(**fields): the defaults with those fields set, validated (snip.Error naming the value).");
    to.def_property(
        "cost", [](const tune_options& o) { return std::string(cost_name(o.cost)); },
        [](tune_options& o, const std::string& v) {
            if (v == "padded") o.cost = snip::tune_cost::padded;
            else if (v == "cut") o.cost = snip::tune_cost::cut;
            else snip::fail("TuneOptions: cost is '", v, "', expected 'padded' or 'cut'");
        },
        "What tune minimises: 'padded' or 'cut' pixels of positive chips.");
    to.def_property(
        "band", [](const tune_options& o) { return std::make_pair(o.band.lo, o.band.hi); },
        [](tune_options& o, std::pair<double, double> b) { o.band = {b.first, b.second}; },
        "(lo, hi): good object sizes after scaling, sqrt(w*h) px.");
    to.def_readwrite("max_upscale", &tune_options::max_upscale, "Largest factor allowed.")
        .def_readwrite("min_factor", &tune_options::min_factor, "Smallest factor on the grid.")
        .def_readwrite("grid_points", &tune_options::grid_points, "Factors on the log grid (2..40).")
        .def_readwrite("long_side_scale", &tune_options::long_side_scale,
                       "Also try a coarsest scale with the long side = chip size.")
        .def_readwrite("min_chip_fill", &tune_options::min_chip_fill,
                       "Skip scales whose median image fills less of a chip.")
        .def_readwrite("min_scales", &tune_options::min_scales, "Fewest scales.")
        .def_readwrite("max_scales", &tune_options::max_scales, "Most scales (<= 6).")
        .def_readwrite("overlap", &tune_options::overlap, "Neighbouring ranges overlap by at least this ratio.")
        .def_readwrite("min_valid_share", &tune_options::min_valid_share,
                       "Share of boxes that must be valid at some scale.")
        .def_readwrite("good_tolerance", &tune_options::good_tolerance,
                       "Accept good share >= best * (1 - tolerance).")
        .def_readwrite("pixel_budget", &tune_options::pixel_budget,
                       "None, or the most pixels per image: then the best good share within it.")
        .def_readwrite("sample_images", &tune_options::sample_images, "Images used for the search.")
        .def_readwrite("seed", &tune_options::seed, "Seed of the sample.")
        .def_readwrite("chip_size", &tune_options::chip_size, "Chip side, px.")
        .def_readwrite("stride", &tune_options::stride, "Candidate stride, px.")
        .def_readwrite("finest_min_side", &tune_options::finest_min_side, "Finest scale's min box side, px.")
        .def_readwrite("threads", &tune_options::threads, "Threads (0: all cores).")
        .def("validate", &tune_options::validate, "Raises snip.Error naming the bad value.")
        .def("__repr__", [](const tune_options& o) {
            return snip::concat("TuneOptions(cost='", cost_name(o.cost), "', band=(", o.band.lo, ", ", o.band.hi,
                                "), max_upscale=", o.max_upscale, ", min_factor=", o.min_factor,
                                ", grid_points=", o.grid_points, ", scales=", o.min_scales, "..", o.max_scales,
                                ", sample_images=", o.sample_images, ", seed=", o.seed, ")");
        });

    pyb::class_<snip::config_metrics>(m, "ConfigMetrics", R"doc(What a configuration does to a dataset (snip::config_metrics).

images, boxes (non-crowd, positive area), valid (valid at one scale at least), good
(valid at a scale where their scaled size is in the band), chips, chip_pixels,
padded_pixels, single_pixels (totals), per_scale_valid; and the derived valid_share,
good_share, chips_per_image, pixels_per_image, padded_per_image, ratio_to_single_scale.)doc")
        .def_readonly("images", &snip::config_metrics::images, "Images measured.")
        .def_readonly("boxes", &snip::config_metrics::boxes, "Non-crowd boxes with positive area.")
        .def_readonly("valid", &snip::config_metrics::valid, "Boxes valid at one scale at least.")
        .def_readonly("good", &snip::config_metrics::good, "Boxes valid at a scale where their scaled size is in the band.")
        .def_readonly("chips", &snip::config_metrics::chips, "Positive chips, total.")
        .def_readonly("chip_pixels", &snip::config_metrics::chip_pixels, "Area of the positive chips as cut, total (scaled px).")
        .def_readonly("padded_pixels", &snip::config_metrics::padded_pixels, "Positive chips x chip_size^2, total.")
        .def_readonly("single_pixels", &snip::config_metrics::single_pixels, "Single-scale 800 x 1333 pixels, total.")
        .def_readonly("per_scale_valid", &snip::config_metrics::per_scale_valid, "Boxes valid at each scale.")
        .def_property_readonly("valid_share", &snip::config_metrics::valid_share, "valid / boxes (1 without boxes).")
        .def_property_readonly("good_share", &snip::config_metrics::good_share, "good / boxes (1 without boxes).")
        .def_property_readonly("chips_per_image", &snip::config_metrics::chips_per_image, "Positive chips per image.")
        .def_property_readonly("pixels_per_image", &snip::config_metrics::pixels_per_image, "Chip pixels as cut per image.")
        .def_property_readonly("padded_per_image", &snip::config_metrics::padded_per_image, "Padded chip pixels per image.")
        .def_property_readonly("ratio_to_single_scale", &snip::config_metrics::ratio_to_single_scale, "Chip pixels as cut over single-scale pixels.")
        .def("__repr__", [](const snip::config_metrics& x) {
            return snip::concat("ConfigMetrics(images=", x.images, ", boxes=", x.boxes, ", valid_share=",
                                x.valid_share(), ", good_share=", x.good_share(), ", chips_per_image=",
                                x.chips_per_image(), ")");
        });

    pyb::class_<snip::tune_candidate>(m, "TuneCandidate", "One evaluated configuration: cfg (PlanConfig) and metrics (ConfigMetrics).")
        .def_readonly("cfg", &snip::tune_candidate::cfg, "The configuration (PlanConfig, a copy).")
        .def_readonly("metrics", &snip::tune_candidate::metrics, "What it does to the dataset (ConfigMetrics).")
        .def(
            "to_dict", [](const snip::tune_candidate& c) { return from_json_value(snip::io::tune_candidate_to_json(c)); },
            "The form of `snip-chips tune --json`: config and the shares, chips and pixels per image.")
        .def("__repr__", [](const snip::tune_candidate& c) {
            std::string s;
            for (const auto& x : c.cfg.scales) s += (s.empty() ? "" : ", ") + x.to_string();
            return snip::concat("TuneCandidate(scales=[", s, "], good_share=", c.metrics.good_share(),
                                ", padded_per_image=", c.metrics.padded_per_image(), ")");
        });

    pyb::class_<snip::tune_result>(m, "TuneResult", R"doc(What tune() found (snip::tune_result).

evaluated: every TuneCandidate tried (on the sample); best_per_count: the choice with k
scales, k = min..max (all images); chosen: the proposal (all images); reference: the
reference configuration (all images) or None; target_good, valid_floor, sample_images,
rule (how the choice was made, in words).)doc")
        .def_readonly("evaluated", &snip::tune_result::evaluated, "Every configuration tried, measured on the sample.")
        .def_readonly("best_per_count", &snip::tune_result::best_per_count, "The choice restricted to k scales, k = min..max, on all images.")
        .def_readonly("chosen", &snip::tune_result::chosen, "The proposal, measured on all images.")
        .def_readonly("reference", &snip::tune_result::reference, "The reference configuration on all images, or None.")
        .def_readonly("target_good", &snip::tune_result::target_good, "Good share the choice had to reach (sample).")
        .def_readonly("valid_floor", &snip::tune_result::valid_floor, "Valid share the choice had to reach (sample).")
        .def_readonly("sample_images", &snip::tune_result::sample_images, "Images in the search sample.")
        .def_readonly("rule", &snip::tune_result::rule, "How the choice was made, in words.")
        .def(
            "to_dict",
            [](const snip::tune_result& r) {
                const nlohmann::json j = snip::io::tune_result_to_json(r);
                return from_json_value(j);
            },
            "The fields of `snip-chips tune --json` that describe the result (rule, sample_images, chosen, "
            "best_per_scale_count, reference).")
        .def("__repr__", [](const snip::tune_result& r) {
            return snip::concat("TuneResult(evaluated=", r.evaluated.size(), ", sample_images=", r.sample_images,
                                ", rule='", r.rule, "')");
        });

    m.def(
        "tune",
        [](const py_dataset& d, const std::optional<tune_options>& options, const pyb::object& reference,
           const pyb::object& progress, const pyb::kwargs& kw) {
            tune_options o = options ? *options : tune_options{};
            if (kw.size() > 0) {
                pyb::object self = pyb::cast(o);
                set_options(self, kw);
                o = self.cast<tune_options>();
            }
            std::optional<snip::plan_config> ref;
            if (!reference.is_none()) ref = reference_of(reference);
            std::exception_ptr callback_error;
            if (!progress.is_none()) o.progress = progress_callback(progress, callback_error);
            snip::tune_result r;
            {
                release_gil nogil;
                r = snip::tune(d.ds, o, ref ? &*ref : nullptr);
            }
            if (callback_error) std::rethrow_exception(callback_error);
            return r;
        },
        pyb::arg("dataset"), pyb::arg("options") = pyb::none(), pyb::arg("reference") = "sniper_coco",
        pyb::arg("progress") = pyb::none(),
        R"doc(tune(dataset, options=None, reference="sniper_coco", progress=None, **fields) -> TuneResult

Searches scale sets and valid ranges for a dataset (snip::tune, what `snip-chips tune`
runs): TuneOptions, or its fields as keywords (cost='cut', band=(32, 150), max_scales=3,
sample_images=200, ...; keywords override `options`). reference: a preset name, a
PlanConfig or None, measured on all images for comparison. progress: optional
callable(done, total). The GIL is released while searching.)doc");

    m.def(
        "evaluate_config",
        [](const snip::plan_config& cfg, const py_dataset& d, std::pair<double, double> band,
           const std::vector<std::size_t>& subset, unsigned threads) {
            release_gil nogil;
            return snip::evaluate_config(cfg, d.ds, snip::size_band{band.first, band.second}, subset, threads);
        },
        pyb::arg("cfg"), pyb::arg("dataset"), pyb::arg("band") = std::make_pair(32.0, 150.0),
        pyb::arg("subset") = std::vector<std::size_t>{}, pyb::arg("threads") = 0,
        R"doc(Measures a configuration on the images `subset` of a dataset (all when empty)
(snip::evaluate_config) -> ConfigMetrics.)doc");

    m.def(
        "dataset_warnings",
        [](const snip::plan_config& cfg, const py_dataset& d, double min_fill, bool box_counts) {
            return snip::dataset_warnings(cfg, d.ds, min_fill, box_counts);
        },
        pyb::arg("cfg"), pyb::arg("dataset"), pyb::arg("min_fill") = 0.5, pyb::arg("box_counts") = true,
        R"doc(Checks a configuration against a dataset (snip::dataset_warnings): scales no box
is valid at, scales whose chips are mostly padding (median fill < min_fill) and boxes
valid at no scale; one message per finding (what `snip-chips plan` warns).)doc");
}

} // namespace snip::py
