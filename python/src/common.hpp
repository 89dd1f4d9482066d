// common.hpp: what every module of the Python package shares: NumPy arrays as snip's
// views without copying, owning results handed to NumPy without copying, the error
// translation, and GIL release.
//
// Inputs: an (N, 4) float32/float64 array of any strides (a slice of a bigger array, a
// transposed view, a column subset) becomes a box_view over the caller's own memory: no
// copy, no cast. Arrays of another dtype or shape are refused with a ValueError naming the
// argument, the dtype and the shape (no silent conversion: the caller decides). Outputs:
// a std::vector is moved into a capsule that the returned array owns.
#pragma once

#include <snip/core/error.hpp>
#include <snip/core/views.hpp>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace snip::py {

namespace pyb = pybind11;

/// A short description of an array for messages: "float32 array of shape (3, 5)".
inline std::string describe(const pyb::array& a) {
    std::string s = pyb::str(a.dtype()).cast<std::string>() + " array of shape (";
    for (pyb::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

/// Raises ValueError (through snip::error's translation) naming `what`.
template <class... Args>
[[noreturn]] void bad_argument(const char* what, Args&&... args) {
    throw pyb::value_error(snip::concat(what, ": ", std::forward<Args>(args)...));
}

/// True when `a`'s dtype is T's (no conversion). Compared by value, not identity: an
/// unpickled array (a DataLoader worker's) has an equal but distinct dtype object.
template <class T>
bool has_dtype(const pyb::array& a) {
    const pyb::dtype want = pyb::dtype::of<T>();
    return a.dtype().is(want) || a.dtype().equal(want);
}

/// The element strides of a (byte strides divided by the item size); refuses a stride that
/// is not a whole number of elements (a record array's field, say).
inline std::vector<std::ptrdiff_t> element_strides(const pyb::array& a, const char* what) {
    std::vector<std::ptrdiff_t> s(static_cast<std::size_t>(a.ndim()));
    const auto item = static_cast<std::ptrdiff_t>(a.itemsize());
    for (pyb::ssize_t i = 0; i < a.ndim(); ++i) {
        const auto b = static_cast<std::ptrdiff_t>(a.strides(i));
        if (b % item != 0)
            bad_argument(what, "the ", describe(a), " has a byte stride ", b,
                         " along axis ", i, " that is not a multiple of its item size ", item);
        s[static_cast<std::size_t>(i)] = b / item;
    }
    return s;
}

/// Checks that `a` is (N, 4) or, with `allow_empty_1d`, an empty (0,) array (what
/// `np.array([])` gives for "no boxes").
inline void check_boxes_shape(const pyb::array& a, const char* what) {
    const bool empty1d = a.ndim() == 1 && a.shape(0) == 0;
    if (!empty1d && (a.ndim() != 2 || a.shape(1) != 4))
        bad_argument(what, "expected boxes as an (N, 4) array of x1, y1, x2, y2, got a ", describe(a));
}

/// An (N, 4) array of T as a read-only box_view over its memory (no copy).
template <class T>
snip::box_view<const T> boxes_of(const pyb::array& a, const char* what) {
    if (!has_dtype<T>(a))
        bad_argument(what, "expected a ", pyb::str(pyb::dtype::of<T>()).cast<std::string>(),
                     " array, got a ", describe(a));
    check_boxes_shape(a, what);
    if (a.ndim() == 1) return {static_cast<const T*>(a.data()), 0};
    const auto s = element_strides(a, what);
    return {static_cast<const T*>(a.data()), static_cast<std::ptrdiff_t>(a.shape(0)), s[0], s[1]};
}

/// An (N, 4) array of T as a writable box_view (the array must be writeable).
template <class T>
snip::box_view<T> mutable_boxes_of(pyb::array& a, const char* what) {
    if (!a.writeable()) bad_argument(what, "the ", describe(a), " is read-only");
    auto v = boxes_of<T>(a, what);
    return {const_cast<T*>(v.data_handle()), v.size(), v.stride(0), v.stride(1)};
}

/// Calls f(box_view<const float>) or f(box_view<const double>) by the array's dtype.
template <class F>
decltype(auto) with_boxes(const pyb::array& a, const char* what, F&& f) {
    if (has_dtype<double>(a)) return f(boxes_of<double>(a, what));
    if (has_dtype<float>(a)) return f(boxes_of<float>(a, what));
    check_boxes_shape(a, what);
    bad_argument(what, "expected a float32 or float64 array, got a ", describe(a));
}

/// A 1-D array of T with `n` elements (any stride) as (pointer, element stride).
template <class T>
std::pair<const T*, std::ptrdiff_t> vector_of(const pyb::array& a, std::ptrdiff_t n,
                                              const char* what) {
    if (!has_dtype<T>(a))
        bad_argument(what, "expected a ", pyb::str(pyb::dtype::of<T>()).cast<std::string>(),
                     " array, got a ", describe(a));
    if (a.ndim() != 1 || (n >= 0 && a.shape(0) != n))
        bad_argument(what, "expected a 1-D array", n >= 0 ? snip::concat(" of ", n, " elements") : "",
                     ", got a ", describe(a));
    return {static_cast<const T*>(a.data()), element_strides(a, what)[0]};
}

/// Moves `v` into a NumPy array of the given shape that owns it (no copy).
template <class T>
pyb::array_t<T> to_array(std::vector<T>&& v, std::vector<pyb::ssize_t> shape) {
    auto* owned = new std::vector<T>(std::move(v));
    pyb::capsule free_when_done(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
    return pyb::array_t<T>(std::move(shape), owned->data(), free_when_done);
}

/// Moves a vector of boxes into an (N, 4) array (no copy: box<T> is four T's).
template <class T>
pyb::array_t<T> boxes_to_array(std::vector<snip::box<T>>&& v) {
    static_assert(sizeof(snip::box<T>) == 4 * sizeof(T));
    const auto n = static_cast<pyb::ssize_t>(v.size());
    auto* owned = new std::vector<snip::box<T>>(std::move(v));
    pyb::capsule free_when_done(owned, [](void* p) { delete static_cast<std::vector<snip::box<T>>*>(p); });
    return pyb::array_t<T>({n, pyb::ssize_t{4}}, reinterpret_cast<const T*>(owned->data()), free_when_done);
}

/// snip::error -> snip.Error, a subclass of ValueError (bad input: the message names the
/// file, field and value); other std exceptions keep pybind11's mapping
/// (std::runtime_error -> RuntimeError). The class is made once, by snip._chips; the other
/// modules import it, so `except snip.Error` catches every module's errors.
inline void register_errors(pyb::module_& m, bool owner) {
    pyb::object cls;
    if (owner) {
        cls = pyb::reinterpret_steal<pyb::object>(
            PyErr_NewExceptionWithDoc("snip.Error",
                                      "Bad input or an impossible request; the message names the "
                                      "file, field and value. A subclass of ValueError.",
                                      PyExc_ValueError, nullptr));
        if (!cls) throw pyb::error_already_set();
    } else {
        cls = pyb::module_::import("snip._chips").attr("Error");
    }
    m.attr("Error") = cls;
    static PyObject* type = cls.release().ptr(); // one per module: kept for the process
    pyb::register_local_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const snip::error& e) {
            PyErr_SetString(type, e.what());
        }
    });
}

/// @brief A C++ progress callback (done, total) that calls the Python callable `fn` with the
/// GIL held and checks for Ctrl-C. The first exception (the callable's, or KeyboardInterrupt)
/// is kept in `err`, later calls do nothing, and the caller rethrows it once the C++ call
/// (run without the GIL) has returned. `fn` and `err` must outlive that call.
inline std::function<void(std::size_t, std::size_t)> progress_callback(const pyb::object& fn,
                                                                       std::exception_ptr& err) {
    return [&fn, &err](std::size_t done, std::size_t total) {
        if (err) return;
        pyb::gil_scoped_acquire gil;
        try {
            fn(done, total);
            if (PyErr_CheckSignals() != 0) throw pyb::error_already_set();
        } catch (...) {
            err = std::current_exception();
        }
    };
}

/// Releases the GIL for the scope (long C++ calls that touch no Python object).
using release_gil = pyb::gil_scoped_release;

} // namespace snip::py
