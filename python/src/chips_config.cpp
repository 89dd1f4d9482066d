// chips_config.cpp: PlanConfig (snip::plan_config), its presets and its JSON form, the
// same reader and writer as `snip-chips plan --config FILE` and the chips file's "config".
#include "chips_parts.hpp"

#include <snip/io/chips_json.hpp>

#include <cmath>
#include <limits>
#include <sstream>

namespace snip::py {

namespace {

const char* const field_names =
    "name, scales, ranges (or valid_ranges), chip_size, stride, stride_min, stride_max, "
    "convention, layout, finest_min_side, max_side_rule, negatives_per_image, "
    "min_proposals_finest, min_proposals_other";

std::string repr_of(pyb::handle v) { return pyb::repr(v).cast<std::string>(); }

[[noreturn]] void wrong_type(const std::string& who, const std::string& key, const char* want,
                             pyb::handle v) {
    throw pyb::type_error(snip::concat(who, ": ", key, " must be ", want, ", got ", repr_of(v), " (",
                                       pyb::str(pyb::type::of(v).attr("__name__")).cast<std::string>(),
                                       ")"));
}

int int_field(pyb::handle v, const std::string& who, const std::string& key) {
    if (PyBool_Check(v.ptr()) || PyFloat_Check(v.ptr()) || !pyb::hasattr(v, "__index__"))
        wrong_type(who, key, "an integer", v);
    const pyb::int_ i = pyb::reinterpret_steal<pyb::int_>(PyNumber_Index(v.ptr()));
    if (!i) throw pyb::error_already_set();
    const long long x = i.cast<long long>();
    if (x < std::numeric_limits<int>::min() || x > std::numeric_limits<int>::max())
        snip::fail(who, ": ", key, " is ", x, ", beyond an int's range");
    return static_cast<int>(x);
}

double number_field(pyb::handle v, const std::string& who, const std::string& key) {
    if (PyBool_Check(v.ptr()) || PyUnicode_Check(v.ptr()) || !pyb::hasattr(v, "__float__"))
        wrong_type(who, key, "a number", v);
    const double d = pyb::float_(pyb::reinterpret_borrow<pyb::object>(v)).cast<double>();
    return d;
}

std::string text_field(pyb::handle v, const std::string& who, const std::string& key) {
    if (!PyUnicode_Check(v.ptr())) wrong_type(who, key, "a string", v);
    return v.cast<std::string>();
}

/// A scale from a Python value: "3", "1.667", "512px", "(1400,2000)", a number, or a
/// (short, max) pair.
snip::scale_spec scale_of(pyb::handle v, const std::string& what) {
    if (PyUnicode_Check(v.ptr())) return snip::scale_spec::parse(v.cast<std::string>(), what);
    if (PyTuple_Check(v.ptr()) || PyList_Check(v.ptr())) {
        const auto seq = pyb::reinterpret_borrow<pyb::sequence>(v);
        if (seq.size() != 2)
            throw pyb::type_error(snip::concat(what, " is ", repr_of(v), ": expected a (short, max) pair"));
        return snip::scale_spec::parse(snip::concat(int_field(seq[0], what, "short"), ",",
                                                    int_field(seq[1], what, "max")),
                                       what);
    }
    if (!PyBool_Check(v.ptr()) && (PyLong_Check(v.ptr()) || PyFloat_Check(v.ptr()) ||
                                   pyb::hasattr(v, "__float__")))
        return snip::scale_spec::parse(
            pyb::repr(pyb::float_(pyb::reinterpret_borrow<pyb::object>(v))).cast<std::string>(), what);
    throw pyb::type_error(snip::concat(what, " is ", repr_of(v),
                                       ": expected a factor like 1.667, a long side like '512px' "
                                       "or a (short, max) pair"));
}

snip::valid_range range_of(pyb::handle v, const std::string& what) {
    if (PyUnicode_Check(v.ptr())) return snip::valid_range::parse(v.cast<std::string>(), what);
    if (!pyb::isinstance<pyb::sequence>(v) || pyb::len(v) != 2)
        throw pyb::type_error(snip::concat(what, " is ", repr_of(v),
                                           ": expected a (lo, hi) pair, -1 for an open end"));
    const auto seq = pyb::reinterpret_borrow<pyb::sequence>(v);
    snip::valid_range r{number_field(seq[0], what, "lo"), number_field(seq[1], what, "hi")};
    r.validate(what);
    return r;
}

std::vector<pyb::object> items_of(pyb::handle v, const std::string& who, const std::string& key) {
    if (PyUnicode_Check(v.ptr()) || !pyb::isinstance<pyb::sequence>(v))
        wrong_type(who, key, "a list", v);
    std::vector<pyb::object> out;
    for (pyb::handle x : v) out.push_back(pyb::reinterpret_borrow<pyb::object>(x));
    return out;
}

/// Sets one field of `c` from a Python value; TypeError for a value of the wrong type,
/// snip.Error for a value out of range (both naming `who`, the field and the value), and
/// TypeError naming an unknown field.
void set_field(snip::plan_config& c, const std::string& key, pyb::handle v, const std::string& who) {
    if (key == "name") {
        c.name = text_field(v, who, key);
    } else if (key == "scales") {
        std::vector<snip::scale_spec> s;
        const auto items = items_of(v, who, key);
        for (std::size_t i = 0; i < items.size(); ++i)
            s.push_back(scale_of(items[i], snip::concat(who, ": scales[", i, "]")));
        c.scales = std::move(s);
    } else if (key == "ranges" || key == "valid_ranges") {
        std::vector<snip::valid_range> r;
        const auto items = items_of(v, who, key);
        for (std::size_t i = 0; i < items.size(); ++i)
            r.push_back(range_of(items[i], snip::concat(who, ": ", key, "[", i, "]")));
        c.ranges = std::move(r);
    } else if (key == "chip_size") {
        c.chip_size = int_field(v, who, key);
    } else if (key == "stride") {
        c.stride = int_field(v, who, key);
    } else if (key == "stride_min") {
        c.stride_min = int_field(v, who, key);
    } else if (key == "stride_max") {
        c.stride_max = int_field(v, who, key);
    } else if (key == "negatives_per_image") {
        c.negatives_per_image = int_field(v, who, key);
    } else if (key == "min_proposals_finest") {
        c.min_proposals_finest = int_field(v, who, key);
    } else if (key == "min_proposals_other") {
        c.min_proposals_other = int_field(v, who, key);
    } else if (key == "finest_min_side") {
        const double d = number_field(v, who, key);
        snip::require(std::isfinite(d), who, ": finest_min_side is ", d, ", must be a finite number");
        c.finest_min_side = d;
    } else if (key == "max_side_rule") {
        if (!PyBool_Check(v.ptr()) && !(pyb::hasattr(v, "dtype") && pyb::str(v.attr("dtype")).cast<std::string>() == "bool"))
            wrong_type(who, key, "True or False", v);
        c.max_side_rule = pyb::bool_(pyb::reinterpret_borrow<pyb::object>(v));
    } else if (key == "convention") {
        c.convention = convention_of(text_field(v, who, key), who);
    } else if (key == "layout") {
        c.layout = layout_of(text_field(v, who, key), who);
    } else {
        throw pyb::type_error(snip::concat(who, ": unknown field '", key, "' (fields: ", field_names, ")"));
    }
}

/// A preset with keyword overrides, as config_from_json reads a JSON object: a fixed
/// `stride` clears the preset's stride draw unless stride_min or stride_max is given too.
snip::plan_config with_overrides(const std::string& preset, const pyb::dict& kw, const std::string& who,
                                 bool validate) {
    snip::plan_config c;
    try {
        c = snip::plan_config::preset(preset);
    } catch (const snip::error& e) {
        snip::fail(who, ": preset: ", e.what());
    }
    for (auto kv : kw) set_field(c, kv.first.cast<std::string>(), kv.second, who);
    if (kw.contains("stride") && !kw.contains("stride_min") && !kw.contains("stride_max"))
        c.stride_min = c.stride_max = 0;
    if (validate) c.validate(who);
    return c;
}

std::string number_text(double d) {
    std::ostringstream os;
    os.precision(10);
    os << d;
    return os.str();
}

std::string config_repr(const snip::plan_config& c) {
    std::string s = "PlanConfig(name=" + repr_of(pyb::str(c.name)) + ", scales=[";
    for (std::size_t i = 0; i < c.scales.size(); ++i) s += (i ? ", '" : "'") + c.scales[i].to_string() + "'";
    s += "], ranges=[";
    for (std::size_t i = 0; i < c.ranges.size(); ++i)
        s += (i ? ", (" : "(") + number_text(c.ranges[i].lo) + ", " + number_text(c.ranges[i].hi) + ")";
    s += snip::concat("], chip_size=", c.chip_size, ", stride=", c.stride, ", stride_min=", c.stride_min,
                      ", stride_max=", c.stride_max, ", convention='", snip::io::to_string(c.convention),
                      "', layout='", snip::io::to_string(c.layout), "', finest_min_side=",
                      number_text(c.finest_min_side), ", max_side_rule=", c.max_side_rule ? "True" : "False",
                      ", negatives_per_image=", c.negatives_per_image, ", min_proposals_finest=",
                      c.min_proposals_finest, ", min_proposals_other=", c.min_proposals_other, ")");
    return s;
}

/// The state a pickle keeps: the JSON dict (config_to_json), read back field by field
/// without validation so that any config, valid or not, round-trips.
snip::plan_config config_from_state(const pyb::dict& d) {
    const std::string preset = d.contains("preset") ? d["preset"].cast<std::string>() : "default";
    snip::plan_config c = snip::plan_config::preset(preset);
    for (auto kv : d) {
        const auto key = kv.first.cast<std::string>();
        if (key != "preset") set_field(c, key, kv.second, "PlanConfig.__setstate__");
    }
    return c;
}

} // namespace

void bind_chips_config(pyb::module_& m) {
    using snip::plan_config;
    pyb::class_<plan_config> cls(m, "PlanConfig", R"doc(Everything that decides a chip plan (snip::plan_config).

Fields (read and write as attributes; a write checks the field's type and form, the whole
config is checked by validate() and by every function that plans with it):

- name: a label ("default", "sniper_coco", "custom", ...)
- scales: list of str, finest first, in the form scale_spec::parse reads and the chips
  JSON writes: a factor "3" / "1.667", a long side "512px", or "(short,max)" such as
  "(1400,2000)"; assigning numbers (3, 1.667) or (short, max) pairs works too
- ranges (alias valid_ranges): one (lo, hi) per scale, sqrt(w*h) in ORIGINAL pixels,
  lo <= size < hi, -1 for an open end
- chip_size, stride: chip side and candidate grid step in scaled pixels
- stride_min, stride_max: draw the stride per epoch from this range (0, 0: fixed stride)
- convention: 'continuous' | 'inclusive'; layout: 'aligned' | 'sniper'
- finest_min_side (float), max_side_rule (bool)
- negatives_per_image, min_proposals_finest, min_proposals_other (negative chip mining)

Equality compares the JSON forms (to_dict()). Picklable (the state is the JSON dict).)doc");
    cls.def(pyb::init([](const std::string& preset, const pyb::kwargs& kw) {
                return with_overrides(preset, kw, "PlanConfig", true);
            }),
            pyb::arg("preset") = "default",
            R"doc(PlanConfig(preset="default", **overrides)

A preset ("default" or "sniper_coco") with keyword overrides of any field, then validated
(snip.Error naming the field and value when the result is not usable). An unknown
keyword raises TypeError naming it. As in a JSON config and on snip-chips' command line,
a fixed `stride` replaces the preset's stride draw unless stride_min or stride_max is
given too.)doc");

    auto prop_int = [&](const char* name, int plan_config::*field, const char* doc) {
        cls.def_property(
            name, [field](const plan_config& c) { return c.*field; },
            [name](plan_config& c, pyb::handle v) { set_field(c, name, v, "PlanConfig"); }, doc);
    };
    cls.def_property(
        "name", [](const plan_config& c) { return c.name; },
        [](plan_config& c, pyb::handle v) { set_field(c, "name", v, "PlanConfig"); }, "The config's label.");
    cls.def_property(
        "scales",
        [](const plan_config& c) {
            std::vector<std::string> s;
            for (const auto& x : c.scales) s.push_back(x.to_string());
            return s;
        },
        [](plan_config& c, pyb::handle v) { set_field(c, "scales", v, "PlanConfig"); },
        "Scales, finest first, as strings: '3', '1.667', '512px', '(1400,2000)'.");
    auto ranges_get = [](const plan_config& c) {
        std::vector<std::pair<double, double>> r;
        for (const auto& x : c.ranges) r.emplace_back(x.lo, x.hi);
        return r;
    };
    cls.def_property(
        "ranges", ranges_get, [](plan_config& c, pyb::handle v) { set_field(c, "ranges", v, "PlanConfig"); },
        "Valid ranges, one (lo, hi) per scale: sqrt(w*h) in original px, lo <= size < hi, -1 = open.");
    cls.def_property(
        "valid_ranges", ranges_get,
        [](plan_config& c, pyb::handle v) { set_field(c, "valid_ranges", v, "PlanConfig"); },
        "The same as `ranges` (the JSON key's name).");
    prop_int("chip_size", &plan_config::chip_size, "Chip side, scaled px (>= 16).");
    prop_int("stride", &plan_config::stride, "Candidate grid step, scaled px, when the stride is not drawn.");
    prop_int("stride_min", &plan_config::stride_min, "Lower end of the per-epoch stride draw (0: no draw).");
    prop_int("stride_max", &plan_config::stride_max, "Upper end of the per-epoch stride draw (0: no draw).");
    prop_int("negatives_per_image", &plan_config::negatives_per_image,
             "Negative chips sampled per image per epoch.");
    prop_int("min_proposals_finest", &plan_config::min_proposals_finest,
             "A negative chip at the finest scale needs MORE than this many proposals.");
    prop_int("min_proposals_other", &plan_config::min_proposals_other,
             "... at the other scales.");
    cls.def_property(
        "convention", [](const plan_config& c) { return std::string(snip::io::to_string(c.convention)); },
        [](plan_config& c, pyb::handle v) { set_field(c, "convention", v, "PlanConfig"); },
        "Pixel convention: 'continuous' (snip's) or 'inclusive' (the original SNIPER code's).");
    cls.def_property(
        "layout", [](const plan_config& c) { return std::string(snip::io::to_string(c.layout)); },
        [](plan_config& c, pyb::handle v) { set_field(c, "layout", v, "PlanConfig"); },
        "Candidate chip layout: 'aligned' (snip's) or 'sniper' (the original's).");
    cls.def_property(
        "finest_min_side", [](const plan_config& c) { return c.finest_min_side; },
        [](plan_config& c, pyb::handle v) { set_field(c, "finest_min_side", v, "PlanConfig"); },
        "At the finest of several scales a box needs w and h >= this (original px).");
    cls.def_property(
        "max_side_rule", [](const plan_config& c) { return c.max_side_rule; },
        [](plan_config& c, pyb::handle v) { set_field(c, "max_side_rule", v, "PlanConfig"); },
        "Non-coarsest scales: a box's longer side, scaled, must be < chip - stride - 1.");
    cls.def_property_readonly("num_scales", &plan_config::num_scales, "Number of scales.");
    cls.def_property_readonly("draws_stride", &plan_config::draws_stride,
                              "True when the stride is drawn per epoch (stride_min/stride_max set).");
    cls.def_property_readonly("max_stride", &plan_config::max_stride,
                              "The largest stride the config plans with (stride_max when drawn).");

    cls.def_static(
        "preset", [](const std::string& name) { return plan_config::preset(name); }, pyb::arg("name"),
        "The preset of that name: 'default' or 'sniper_coco' (snip.Error for another name).");
    cls.def_static(
        "presets", [] { return std::vector<std::string>{"default", "sniper_coco"}; },
        "The names of the presets.");
    cls.def_static(
        "from_json",
        [](const std::string& path) {
            return snip::io::config_from_json(snip::io::read_json_file(path), path);
        },
        pyb::arg("path"),
        R"doc(Reads a JSON config file with the reader of `snip-chips plan --config FILE`
(snip::io::config_from_json): keys left out take the value of its "preset" (else the
defaults); every value is checked and the config validated. Errors (snip.Error) name the
file, the field and the value.)doc");
    cls.def_static(
        "from_dict",
        [](const pyb::dict& d, const std::string& source) {
            return snip::io::config_from_json(to_json_value(d, source), source);
        },
        pyb::arg("d"), pyb::arg("source") = "dict",
        R"doc(A config from a dict of the JSON form (to_dict() / a chips file's "config"),
read as from_json reads a file; `source` names it in error messages.)doc");
    cls.def(
        "to_dict", [](const plan_config& c) { return from_json_value(snip::io::config_to_json(c)); },
        "The JSON form (snip::io::config_to_json) as a dict: what from_dict and from_json read back.");
    cls.def(
        "to_json",
        [](const plan_config& c, int indent) { return snip::io::config_to_json(c).dump(indent); },
        pyb::arg("indent") = 2, "The JSON form as text (indent < 0: compact).");
    cls.def(
        "save",
        [](const plan_config& c, const std::string& path) {
            snip::io::write_atomically(path, snip::io::config_to_json(c).dump(2) + "\n");
        },
        pyb::arg("path"),
        "Writes the JSON form to `path` (atomically), a file `snip-chips plan --config` reads.");
    cls.def(
        "validate", [](const plan_config& c) { c.validate("PlanConfig"); },
        "Raises snip.Error naming the field and value unless scales, ranges, chip size and "
        "stride fit together.");
    cls.def(
        "epoch_stride",
        [](const plan_config& c, std::uint64_t seed, int epoch) { return snip::epoch_stride(c, seed, epoch); },
        pyb::arg("seed") = 0, pyb::arg("epoch") = 0,
        "The candidate stride of an epoch: `stride`, or the draw from stride_min..stride_max "
        "seeded by (seed, epoch) (snip::epoch_stride).");
    cls.def(
        "scaled_sizes",
        [](const plan_config& c, int width, int height) {
            std::vector<std::tuple<double, int, int>> out;
            for (const auto& s : snip::scale_pyramid(c.scales, width, height))
                out.emplace_back(s.factor, s.width, s.height);
            return out;
        },
        pyb::arg("width"), pyb::arg("height"),
        "(factor, width, height) of a width x height image at every scale (snip::scale_pyramid).");
    cls.def("copy", [](const plan_config& c) { return c; }, "An independent copy of the config.");
    cls.def("__copy__", [](const plan_config& c) { return c; });
    cls.def("__deepcopy__", [](const plan_config& c, const pyb::handle&) { return c; }, pyb::arg("memo"));
    cls.def("__eq__", [](const plan_config& a, const plan_config& b) {
        return snip::io::config_to_json(a) == snip::io::config_to_json(b);
    });
    cls.def("__eq__", [](const plan_config&, const pyb::handle&) {
        return pyb::reinterpret_borrow<pyb::object>(Py_NotImplemented);
    });
    cls.attr("__hash__") = pyb::none();
    cls.def("__repr__", &config_repr);
    cls.def(pyb::pickle(
        [](const plan_config& c) { return pyb::dict(from_json_value(snip::io::config_to_json(c))); },
        [](const pyb::dict& d) { return config_from_state(d); }));

    m.def(
        "epoch_stride",
        [](const plan_config& c, std::uint64_t seed, int epoch) { return snip::epoch_stride(c, seed, epoch); },
        pyb::arg("cfg"), pyb::arg("seed") = 0, pyb::arg("epoch") = 0,
        "The candidate stride of an epoch (PlanConfig.epoch_stride).");
}

} // namespace snip::py
