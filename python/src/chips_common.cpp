// chips_common.cpp: the helpers the parts of snip._chips share (chips_parts.hpp).
#include "chips_parts.hpp"

#include <cmath>
#include <limits>

namespace snip::py {

std::vector<std::uint8_t> flags_of(const pyb::object& flags, std::ptrdiff_t n, const char* what) {
    std::vector<std::uint8_t> out;
    if (flags.is_none()) return out;
    pyb::array a = pyb::array::ensure(flags);
    if (!a) bad_argument(what, "expected a 1-D array of ", n, " flags, got ", pyb::repr(flags).cast<std::string>());
    const char kind = a.dtype().kind();
    if (kind != 'b' && kind != 'i' && kind != 'u')
        bad_argument(what, "expected a 1-D array of ", n, " bools or integers, got a ", describe(a));
    if (a.ndim() != 1 || a.shape(0) != n)
        bad_argument(what, "expected a 1-D array of ", n, " flags (one per box), got a ", describe(a));
    auto b = pyb::array_t<std::uint8_t, pyb::array::c_style | pyb::array::forcecast>::ensure(
        a.attr("astype")(pyb::dtype::of<bool>()).attr("view")(pyb::dtype::of<std::uint8_t>()));
    out.assign(b.data(), b.data() + b.size());
    return out;
}

std::vector<int> ints_of(const pyb::object& v, const char* what) {
    std::vector<int> out;
    if (v.is_none()) return out;
    pyb::array a = pyb::array::ensure(v);
    if (!a) bad_argument(what, "expected a 1-D sequence of integers, got ", pyb::repr(v).cast<std::string>());
    const char kind = a.dtype().kind();
    if (a.ndim() != 1 || (a.shape(0) > 0 && kind != 'i' && kind != 'u'))
        bad_argument(what, "expected a 1-D sequence of integers, got a ", describe(a));
    out.reserve(static_cast<std::size_t>(a.shape(0)));
    for (pyb::handle x : a.attr("tolist")()) {
        const auto k = x.cast<long long>();
        if (k < std::numeric_limits<int>::min() || k > std::numeric_limits<int>::max())
            bad_argument(what, "value ", k, " does not fit an int");
        out.push_back(static_cast<int>(k));
    }
    return out;
}

pyb::array boxes_arg(const pyb::object& v, const char* what) {
    if (pyb::isinstance<pyb::array>(v)) return pyb::reinterpret_borrow<pyb::array>(v);
    pyb::array a;
    try {
        a = pyb::array_t<double, pyb::array::c_style | pyb::array::forcecast>::ensure(v);
    } catch (const pyb::error_already_set&) {
    }
    if (!a) bad_argument(what, "expected an (N, 4) float array, got ", pyb::repr(v).cast<std::string>());
    return a;
}

std::vector<snip::box<double>> boxes_copy(const pyb::object& boxes, const char* what) {
    std::vector<snip::box<double>> out;
    if (boxes.is_none()) return out;
    const pyb::array a = boxes_arg(boxes, what);
    if (a.ndim() == 1 && a.shape(0) == 0) return out; // [] or np.array([])
    return with_boxes(a, what, [&](auto v) {
        std::vector<snip::box<double>> r(static_cast<std::size_t>(v.size()));
        for (std::ptrdiff_t i = 0; i < v.size(); ++i)
            r[static_cast<std::size_t>(i)] = v[i].template cast<double>();
        return r;
    });
}

snip::pixel_convention convention_of(const std::string& s, const std::string& what) {
    if (s == "continuous") return snip::pixel_convention::continuous;
    if (s == "inclusive") return snip::pixel_convention::inclusive;
    snip::fail(what, ": convention is '", s, "', expected 'continuous' or 'inclusive'");
}

snip::chip_layout layout_of(const std::string& s, const std::string& what) {
    if (s == "aligned") return snip::chip_layout::aligned;
    if (s == "sniper") return snip::chip_layout::sniper;
    snip::fail(what, ": layout is '", s, "', expected 'aligned' or 'sniper'");
}

nlohmann::json to_json_value(pyb::handle v, const std::string& what) {
    using json = nlohmann::json;
    if (v.is_none()) return nullptr;
    if (PyBool_Check(v.ptr())) return v.cast<bool>();
    if (PyLong_Check(v.ptr())) {
        if (pyb::reinterpret_borrow<pyb::int_>(v) < pyb::int_(0)) return v.cast<std::int64_t>();
        return v.cast<std::uint64_t>();
    }
    if (PyFloat_Check(v.ptr())) return v.cast<double>();
    if (PyUnicode_Check(v.ptr())) return v.cast<std::string>();
    if (PyDict_Check(v.ptr())) {
        json o = json::object();
        for (auto kv : pyb::reinterpret_borrow<pyb::dict>(v)) {
            if (!PyUnicode_Check(kv.first.ptr()))
                throw pyb::type_error(snip::concat(what, ": keys must be strings, got ",
                                                   pyb::repr(kv.first).cast<std::string>()));
            const auto key = kv.first.cast<std::string>();
            o[key] = to_json_value(kv.second, what + "." + key);
        }
        return o;
    }
    if (PyList_Check(v.ptr()) || PyTuple_Check(v.ptr())) {
        json a = json::array();
        std::size_t i = 0;
        for (pyb::handle x : v) a.push_back(to_json_value(x, snip::concat(what, "[", i++, "]")));
        return a;
    }
    // NumPy scalars and arrays: their Python values
    if (pyb::hasattr(v, "tolist") && pyb::hasattr(v, "dtype")) return to_json_value(v.attr("tolist")(), what);
    throw pyb::type_error(snip::concat(what, ": cannot express ", pyb::repr(v).cast<std::string>(),
                                       " (", pyb::str(pyb::type::of(v)).cast<std::string>(),
                                       ") in JSON"));
}

pyb::object from_json_value(const nlohmann::json& j) {
    switch (j.type()) {
    case nlohmann::json::value_t::null: return pyb::none();
    case nlohmann::json::value_t::boolean: return pyb::bool_(j.get<bool>());
    case nlohmann::json::value_t::number_integer: return pyb::int_(j.get<std::int64_t>());
    case nlohmann::json::value_t::number_unsigned: return pyb::int_(j.get<std::uint64_t>());
    case nlohmann::json::value_t::number_float: return pyb::float_(j.get<double>());
    case nlohmann::json::value_t::string: return pyb::str(j.get_ref<const std::string&>());
    case nlohmann::json::value_t::array: {
        pyb::list l;
        for (const auto& x : j) l.append(from_json_value(x));
        return l;
    }
    case nlohmann::json::value_t::object: {
        pyb::dict d;
        for (auto it = j.begin(); it != j.end(); ++it) d[pyb::str(it.key())] = from_json_value(it.value());
        return d;
    }
    default: return pyb::none();
    }
}

snip::plan_workspace& thread_workspace() {
    thread_local snip::plan_workspace ws;
    return ws;
}

} // namespace snip::py
