// box_view / feature_view and the standard-library adapters of views.hpp.
#include "test_util.hpp"

#include <snip/core/views.hpp>

#include <array>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace {

template <class V>
concept can_set = requires(const V& v, snip::box<float> b) { v.set(0, b); };

/// Sum of every coordinate, in a constant expression.
constexpr float constexpr_sum() {
    float buf[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    snip::box_view<float> v(buf, 2);
    v.set(1, {10, 20, 30, 40});
    const snip::box_view<const float> c = v;
    float s = 0;
    for (std::ptrdiff_t i = 0; i < c.size(); ++i)
        for (int k = 0; k < 4; ++k) s += c(i, k);
    return s + c.subview(1, 1)[0].x1;
}
static_assert(constexpr_sum() == 0 + 1 + 2 + 3 + 10 + 20 + 30 + 40 + 10);

constexpr bool constexpr_features() {
    int buf[2 * 3 * 4 * 5] = {};
    snip::feature_view<int> f(buf, 2, 3, 4, 5);
    f(1, 2, 3, 4) = 7;
    return buf[119] == 7 && f.is_contiguous() && f.size() == 120;
}
static_assert(constexpr_features());

} // namespace

// The standard adapters.
static_assert(snip::box_storage<std::vector<float>>);
static_assert(snip::box_storage<const std::vector<float>>);
static_assert(snip::box_storage<std::vector<double>>);
static_assert(snip::box_storage<std::vector<snip::box<float>>>);
static_assert(snip::box_storage<const std::vector<snip::box<int>>>);
static_assert(snip::box_storage<std::span<float>>);
static_assert(snip::box_storage<std::span<const double, 8>>);
static_assert(snip::box_storage<snip::box_view<float>>);
// Types without a view_traits specialisation are rejected (not a hard error).
static_assert(!snip::box_storage<int>);
static_assert(!snip::box_storage<std::string>);

// Conversions: mutable -> const only.
static_assert(std::is_convertible_v<snip::box_view<float>, snip::box_view<const float>>);
static_assert(!std::is_convertible_v<snip::box_view<const float>, snip::box_view<float>>);
static_assert(!std::is_constructible_v<snip::box_view<float>, snip::box_view<const float>>);
static_assert(!std::is_constructible_v<snip::box_view<const double>, snip::box_view<float>>);
static_assert(std::is_convertible_v<snip::feature_view<float>, snip::feature_view<const float>>);
static_assert(!std::is_convertible_v<snip::feature_view<const float>, snip::feature_view<float>>);
static_assert(can_set<snip::box_view<float>>);
static_assert(!can_set<snip::box_view<const float>>);
static_assert(std::is_trivially_copyable_v<snip::box_view<float>>);
static_assert(std::is_trivially_copyable_v<snip::feature_view<float>>);

TEST_CASE("box_view: default, extents, strides") {
    const snip::box_view<float> d;
    CHECK(d.empty());
    CHECK(d.size() == 0);
    CHECK(d.data_handle() == nullptr);
    CHECK(d.stride(0) == 4);
    CHECK(d.stride(1) == 1);
    CHECK(d.extent(1) == 4);

    float buf[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    const snip::box_view<float> v(buf, 3);
    CHECK(v.size() == 3);
    CHECK(v.extent(0) == 3);
    CHECK(v.extent(1) == 4);
    CHECK(v.is_contiguous());
    CHECK(v[2] == snip::box<float>{8, 9, 10, 11});
    CHECK(&v(1, 2) == buf + 6);

    // Rows padded to 6 numbers.
    float padded[3 * 6] = {};
    const snip::box_view<float> p(padded, 3, 6, 1);
    CHECK_FALSE(p.is_contiguous());
    p.set(2, {1, 2, 3, 4});
    CHECK(padded[12] == 1);
    CHECK(padded[15] == 4);
    CHECK(padded[16] == 0);
}

TEST_CASE("box_view: subview keeps strides") {
    float buf[5 * 4];
    for (int i = 0; i < 20; ++i) buf[i] = float(i);
    const snip::box_view<float> v(buf, 5);
    const auto s = v.subview(1, 3);
    CHECK(s.size() == 3);
    CHECK(s.data_handle() == buf + 4);
    CHECK(s[0] == v[1]);
    CHECK(s[2] == v[3]);
    CHECK(v.subview(5, 0).empty());

    // Column-major 4 x 5: box i is column i.
    const snip::box_view<float> cm(buf, 5, 1, 5);
    const auto cs = cm.subview(2, 2);
    CHECK(cs.data_handle() == buf + 2);
    CHECK(cs.stride(0) == 1);
    CHECK(cs.stride(1) == 5);
    CHECK(cs[1] == snip::box<float>{3, 8, 13, 18});
}

TEST_CASE("box_view: const conversion and set") {
    std::array<double, 8> a{};
    const snip::box_view<double> v(a.data(), 2);
    const snip::box_view<const double> c = v;
    CHECK(c.data_handle() == a.data());
    CHECK(c.size() == 2);
    CHECK(c.stride(0) == 4);
    v.set(1, {1.5, 2.5, 3.5, 4.5});
    CHECK(c[1] == snip::box<double>{1.5, 2.5, 3.5, 4.5});
    CHECK(a[7] == 4.5);
    v(0, 3) = -1.0;  // operator() gives a reference
    CHECK(c(0, 3) == -1.0);
}

TEST_CASE("feature_view: contiguous and strided") {
    std::vector<float> buf(2 * 3 * 4 * 5);
    for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = float(i);
    const snip::feature_view<float> f(buf.data(), 2, 3, 4, 5);
    CHECK(f.extent(0) == 2);
    CHECK(f.extent(3) == 5);
    CHECK(f.stride(0) == 60);
    CHECK(f.stride(1) == 20);
    CHECK(f.stride(2) == 5);
    CHECK(f.stride(3) == 1);
    CHECK(f.size() == 120);
    CHECK(f.is_contiguous());
    CHECK(f(1, 2, 3, 4) == 119.0f);
    CHECK(f(1, 0, 2, 1) == float(60 + 10 + 1));

    // The same memory read as NHWC with C = 5, H = 3, W = 4: strides (60, 1, 20, 5).
    const snip::feature_view<float> nhwc(buf.data(), {2, 5, 3, 4}, {60, 1, 20, 5});
    CHECK_FALSE(nhwc.is_contiguous());
    CHECK(nhwc(1, 4, 2, 3) == float(60 + 4 + 40 + 15));
    const snip::feature_view<const float> c = nhwc;
    CHECK(c.stride(2) == 20);
    CHECK(&c(0, 1, 0, 0) == buf.data() + 1);
    const snip::feature_view<float> none;
    CHECK(none.size() == 0);
}

TEST_CASE("as_box_view: flat std::vector") {
    std::vector<float> flat = {0, 0, 10, 10, 5, 5, 20, 30};
    auto v = snip::as_box_view(flat);
    static_assert(std::is_same_v<decltype(v), snip::box_view<float>>);
    CHECK(v.data_handle() == flat.data());
    CHECK(v.size() == 2);
    CHECK(v[1] == snip::box<float>{5, 5, 20, 30});
    v.set(0, {1, 1, 2, 2});
    CHECK(flat[3] == 2.0f);
    const auto& cflat = flat;
    auto cv = snip::as_box_view(cflat);
    static_assert(std::is_same_v<decltype(cv), snip::box_view<const float>>);
    CHECK(cv.data_handle() == flat.data());

    std::vector<float> empty;
    CHECK(snip::as_box_view(empty).empty());

    std::vector<float> seven(7);
    CHECK_THROWS_WITH_AS(snip::as_box_view(seven), doctest::Contains("got 7 numbers"), snip::error);
    CHECK_THROWS_WITH_AS(snip::as_box_view(seven), doctest::Contains("4 numbers per box"),
                         snip::error);
}

TEST_CASE("as_box_view: vector of snip::box") {
    std::vector<snip::box<float>> boxes = {{0, 0, 1, 1}, {2, 3, 4, 5}};
    auto v = snip::as_box_view(boxes);
    static_assert(std::is_same_v<decltype(v), snip::box_view<float>>);
    CHECK(v.data_handle() == &boxes[0].x1);
    CHECK(v.size() == 2);
    CHECK(v.is_contiguous());
    CHECK(v[1] == boxes[1]);
    v.set(0, {9, 9, 9, 9});
    CHECK(boxes[0] == snip::box<float>{9, 9, 9, 9});
    const std::vector<snip::box<int>> cb = {{1, 2, 3, 4}};
    auto c = snip::as_box_view(cb);
    static_assert(std::is_same_v<decltype(c), snip::box_view<const int>>);
    CHECK(c[0] == cb[0]);
    std::vector<snip::box<float>> none;
    const auto e = snip::as_box_view(none);
    CHECK(e.empty());
    CHECK(e.data_handle() == nullptr);
}

TEST_CASE("as_box_view: std::span") {
    std::vector<float> flat = {0, 0, 10, 10, 5, 5, 20, 30};
    std::span<float> s(flat);
    auto v = snip::as_box_view(s);
    static_assert(std::is_same_v<decltype(v), snip::box_view<float>>);
    CHECK(v.data_handle() == flat.data());
    CHECK(v.size() == 2);
    std::span<const float, 4> fixed(flat.data() + 4, 4);
    auto f = snip::as_box_view(fixed);
    static_assert(std::is_same_v<decltype(f), snip::box_view<const float>>);
    CHECK(f[0] == snip::box<float>{5, 5, 20, 30});
    std::span<float> odd(flat.data(), 6);
    CHECK_THROWS_WITH_AS(snip::as_box_view(odd), doctest::Contains("got 6 numbers"), snip::error);

    std::vector<snip::box<double>> boxes = {{0, 0, 1, 1}, {2, 3, 4, 5}, {6, 7, 8, 9}};
    const auto bs = snip::as_box_view(std::span<snip::box<double>>(boxes).subspan(1));
    static_assert(std::is_same_v<std::remove_const_t<decltype(bs)>, snip::box_view<double>>);
    CHECK(bs.data_handle() == &boxes[1].x1);
    CHECK(bs[1] == boxes[2]);
    const auto cbs = snip::as_box_view(std::span<const snip::box<double>>(boxes));
    static_assert(std::is_same_v<std::remove_const_t<decltype(cbs)>, snip::box_view<const double>>);
    CHECK(cbs.size() == 3);
}

TEST_CASE("as_box_view: raw pointer with strides") {
    // Column-major 4 x N (coordinates as rows): row stride 1, column stride N.
    constexpr std::ptrdiff_t N = 3;
    const float cm[4 * N] = {0, 10, 20,   // x1 of boxes 0..2
                             1, 11, 21,   // y1
                             2, 12, 22,   // x2
                             3, 13, 23};  // y2
    const auto v = snip::as_box_view(cm, N, 1, N);
    static_assert(std::is_same_v<std::remove_const_t<decltype(v)>, snip::box_view<const float>>);
    CHECK(v.size() == N);
    CHECK(v.stride(0) == 1);
    CHECK(v.stride(1) == N);
    CHECK(v[0] == snip::box<float>{0, 1, 2, 3});
    CHECK(v[2] == snip::box<float>{20, 21, 22, 23});
    int dense[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const auto d = snip::as_box_view(dense, 2);
    CHECK(d.is_contiguous());
    CHECK(d[1] == snip::box<int>{5, 6, 7, 8});
}

TEST_CASE("as_box_view: a view passes through") {
    float buf[8] = {};
    const snip::box_view<float> v(buf, 2, 4, 1);
    auto w = snip::as_box_view(v);
    static_assert(std::is_same_v<decltype(w), snip::box_view<float>>);
    CHECK(w.data_handle() == buf);
    CHECK(w.size() == 2);
}
