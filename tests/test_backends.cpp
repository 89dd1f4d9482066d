// The box storage backends (plain buffers, Eigen, xtensor) are zero-copy and give
// exactly the same covers and plans as a std::vector<snip::box<float>>.
#include "backend_test_body.hpp"
#include "test_util.hpp"

#include <snip/sniper/cover.hpp>
#include <snip/sniper/plan.hpp>
#include <snip/core/views.hpp>

#if __has_include(<Eigen/Core>)
#define SNIP_TEST_EIGEN 1
#include <snip/adapt/eigen.hpp>
#endif
#if __has_include(<xtensor/xtensor.hpp>)
#define SNIP_TEST_XTENSOR 1
#include <snip/adapt/xtensor.hpp>
#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xfixed.hpp>
#include <xtensor/xtensor.hpp>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using backend_test::kH;
using backend_test::kW;
using backend_test::random_boxes;

// Each backend: the container type, how to fill it from boxes, and where its storage is.
struct flat_vector {
    using container = std::vector<float>;
    static container make(const std::vector<snip::box<float>>& b) {
        container c;
        for (const auto& x : b) c.insert(c.end(), {x.x1, x.y1, x.x2, x.y2});
        return c;
    }
    static float at(const container& c, std::size_t i, std::size_t k) { return c[4 * i + k]; }
    static const float* storage(const container& c) { return c.data(); }
    static std::size_t storage_size(const container& c) { return c.size(); }
};

#ifdef SNIP_TEST_EIGEN
template <class M>
struct eigen_backend {
    using container = M;
    static container make(const std::vector<snip::box<float>>& b) {
        container m(static_cast<Eigen::Index>(b.size()), 4);
        for (std::size_t i = 0; i < b.size(); ++i) {
            const auto r = static_cast<Eigen::Index>(i);
            m(r, 0) = b[i].x1, m(r, 1) = b[i].y1, m(r, 2) = b[i].x2, m(r, 3) = b[i].y2;
        }
        return m;
    }
    static float at(const container& c, std::size_t i, std::size_t k) {
        return c(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(k));
    }
    static const float* storage(const container& c) { return c.data(); }
    static std::size_t storage_size(const container& c) { return static_cast<std::size_t>(c.size()); }
};
using eigen_row_major = eigen_backend<Eigen::Matrix<float, Eigen::Dynamic, 4, Eigen::RowMajor>>;
using eigen_col_major = eigen_backend<Eigen::MatrixXf>;  // dynamic columns: checked at run time
#endif

#ifdef SNIP_TEST_XTENSOR
struct xtensor_2d {
    using container = xt::xtensor<float, 2>;
    static container make(const std::vector<snip::box<float>>& b) {
        auto t = container::from_shape({b.size(), std::size_t(4)});
        for (std::size_t i = 0; i < b.size(); ++i)
            t(i, 0) = b[i].x1, t(i, 1) = b[i].y1, t(i, 2) = b[i].x2, t(i, 3) = b[i].y2;
        return t;
    }
    static float at(const container& c, std::size_t i, std::size_t k) { return c(i, k); }
    static const float* storage(const container& c) { return c.data(); }
    static std::size_t storage_size(const container& c) { return c.size(); }
};
#endif

/// True when greedy_cover(candidates, v) compiles for a view of type V.
template <class V>
concept cover_accepts = requires(const std::vector<snip::box<int>>& c, V v) {
    snip::greedy_cover(c, v);
};

} // namespace

TEST_CASE_TEMPLATE_DEFINE("backend: zero copy, same boxes, same cover, same plan", B, backend_test) {
    backend_test::run<B>();
}

TEST_CASE_TEMPLATE_INVOKE(backend_test, flat_vector);
#ifdef SNIP_TEST_EIGEN
TEST_CASE_TEMPLATE_INVOKE(backend_test, eigen_row_major, eigen_col_major);
#endif
#ifdef SNIP_TEST_XTENSOR
TEST_CASE_TEMPLATE_INVOKE(backend_test, xtensor_2d);
#endif

TEST_CASE("greedy_cover takes a mutable box_view without an explicit conversion") {
    std::vector<float> flat = {0, 0, 10, 10};
    auto v = snip::as_box_view(flat);
    const std::vector<snip::box<int>> cands = {{0, 0, 20, 20}};
    static_assert(cover_accepts<snip::box_view<const float>>);
    static_assert(cover_accepts<decltype(v)>);
    CHECK(snip::greedy_cover(cands, v).owner == std::vector<int>{0});
}

#ifdef SNIP_TEST_EIGEN
TEST_CASE("eigen: strides of both storage orders") {
    Eigen::Matrix<float, Eigen::Dynamic, 4, Eigen::RowMajor> r(5, 4);
    Eigen::MatrixXf c(5, 4);
    r.setZero();
    c.setZero();
    const auto vr = snip::as_box_view(r);
    const auto vc = snip::as_box_view(c);
    CHECK(vr.stride(0) == 4);
    CHECK(vr.stride(1) == 1);
    CHECK(vr.is_contiguous());
    CHECK(vc.stride(0) == 1);
    CHECK(vc.stride(1) == 5);
    CHECK_FALSE(vc.is_contiguous());
    c(2, 3) = 7.0f;
    CHECK(vc(2, 3) == 7.0f);
    CHECK(vc[2] == snip::box<float>{0, 0, 0, 7});
}

TEST_CASE("eigen: fixed sizes, arrays, const, double") {
    Eigen::Matrix<float, 3, 4> fixed;
    fixed << 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11;
    const auto vf = snip::as_box_view(fixed);
    CHECK(vf.size() == 3);
    CHECK(vf[1] == snip::box<float>{4, 5, 6, 7});  // column-major storage, read by (row, col)

    Eigen::RowVector4f one(1, 2, 3, 4);
    CHECK(snip::as_box_view(one).size() == 1);
    CHECK(snip::as_box_view(one)[0] == snip::box<float>{1, 2, 3, 4});

    Eigen::Array<double, Eigen::Dynamic, 4, Eigen::RowMajor> arr(2, 4);
    arr << 1, 2, 3, 4, 5, 6, 7, 8;
    const auto& carr = arr;
    auto va = snip::as_box_view(carr);
    static_assert(std::is_same_v<decltype(va), snip::box_view<const double>>);
    CHECK(va[1] == snip::box<double>{5, 6, 7, 8});
    CHECK(va.data_handle() == arr.data());

    const Eigen::MatrixXd cm = Eigen::MatrixXd::Zero(3, 4);
    static_assert(std::is_same_v<decltype(snip::as_box_view(cm)), snip::box_view<const double>>);
}

TEST_CASE("eigen: a matrix without 4 columns is rejected with its shape") {
    Eigen::MatrixXf five(3, 5);
    five.setZero();
    CHECK_THROWS_WITH_AS(snip::as_box_view(five),
                         doctest::Contains("Eigen matrix with 5 columns"), snip::error);
    CHECK_THROWS_WITH_AS(snip::as_box_view(five), doctest::Contains("3 x 5"), snip::error);
    CHECK_THROWS_WITH_AS(snip::as_box_view(five), doctest::Contains("N x 4"), snip::error);
    Eigen::Vector4f column(1, 2, 3, 4);  // 4 x 1: four boxes of one number each, no
    CHECK_THROWS_AS(snip::as_box_view(column), snip::error);
    Eigen::Matrix<float, Eigen::Dynamic, 3> three(2, 3);
    CHECK_THROWS_WITH_AS(snip::as_box_view(three), doctest::Contains("3 columns"), snip::error);
}

TEST_CASE("eigen: maps with strides") {
    // Rows of 6 floats of which the first 4 are a box: a non-contiguous row-major map.
    std::vector<float> buf(3 * 6);
    for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = float(i);
    using RowMat = Eigen::Matrix<float, Eigen::Dynamic, 4, Eigen::RowMajor>;
    Eigen::Map<RowMat, 0, Eigen::OuterStride<>> m(buf.data(), 3, 4, Eigen::OuterStride<>(6));
    const auto v = snip::as_box_view(m);
    CHECK(v.data_handle() == buf.data());
    CHECK(v.stride(0) == 6);
    CHECK(v.stride(1) == 1);
    CHECK(v[0] == snip::box<float>{0, 1, 2, 3});
    CHECK(v[2] == snip::box<float>{12, 13, 14, 15});
    v.set(1, {-1, -2, -3, -4});
    CHECK(buf[6] == -1.0f);
    CHECK(buf[9] == -4.0f);
    CHECK(buf[10] == 10.0f);  // padding untouched

    // A temporary map with both strides dynamic (every other float, column-major).
    std::vector<float> cm(2 * 4 * 2);
    for (std::size_t i = 0; i < cm.size(); ++i) cm[i] = float(i);
    using Dyn = Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>;
    const auto vc = snip::as_box_view(Eigen::Map<Eigen::MatrixXf, 0, Dyn>(cm.data(), 2, 4, Dyn(4, 2)));
    CHECK(vc.stride(0) == 2);
    CHECK(vc.stride(1) == 4);
    CHECK(vc[1] == snip::box<float>{2, 6, 10, 14});

    // A map of const data gives a read-only view.
    const std::vector<float> cbuf = {1, 2, 3, 4, 5, 6, 7, 8};
    Eigen::Map<const RowMat> cmap(cbuf.data(), 2, 4);
    auto cv = snip::as_box_view(cmap);
    static_assert(std::is_same_v<decltype(cv), snip::box_view<const float>>);
    CHECK(cv[1] == snip::box<float>{5, 6, 7, 8});
}

TEST_CASE("eigen: blocks and refs") {
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> wide(4, 6);
    for (int i = 0; i < 4; ++i)
        for (int k = 0; k < 6; ++k) wide(i, k) = float(10 * i + k);
    // leftCols(4) of a row-major 4 x 6: row stride 6.
    const auto left = snip::as_box_view(wide.leftCols(4));
    CHECK(left.data_handle() == wide.data());
    CHECK(left.size() == 4);
    CHECK(left.stride(0) == 6);
    CHECK(left[2] == snip::box<float>{20, 21, 22, 23});
    const auto mid = snip::as_box_view(wide.middleCols(2, 4));
    CHECK(mid.data_handle() == wide.data() + 2);
    CHECK(mid[3] == snip::box<float>{32, 33, 34, 35});
    CHECK_THROWS_WITH_AS(snip::as_box_view(wide.leftCols(5)),
                         doctest::Contains("Eigen matrix with 5 columns"), snip::error);

    // middleRows of a column-major N x 4.
    Eigen::MatrixXf c(6, 4);
    for (int i = 0; i < 6; ++i)
        for (int k = 0; k < 4; ++k) c(i, k) = float(10 * i + k);
    const auto rows = snip::as_box_view(c.middleRows(2, 3));
    CHECK(rows.data_handle() == c.data() + 2);
    CHECK(rows.size() == 3);
    CHECK(rows.stride(0) == 1);
    CHECK(rows.stride(1) == 6);
    CHECK(rows[0] == snip::box<float>{20, 21, 22, 23});
    // An lvalue block, and a block of a const matrix.
    auto blk = c.topRows(2);
    snip::as_box_view(blk).set(1, {0, 0, 1, 1});
    CHECK(c(1, 2) == 1.0f);
    const Eigen::MatrixXf& cc = c;
    auto cb = snip::as_box_view(cc.bottomRows(1));
    static_assert(std::is_same_v<decltype(cb), snip::box_view<const float>>);
    CHECK(cb[0] == snip::box<float>{50, 51, 52, 53});

    // A Ref binds without a copy when the layouts agree ...
    Eigen::Ref<Eigen::MatrixXf> ref = c;
    CHECK(snip::as_box_view(ref).data_handle() == c.data());
    Eigen::Ref<const Eigen::MatrixXf, 0, Eigen::OuterStride<>> cref = wide.leftCols(4);  // copies: order differs
    const auto vref = snip::as_box_view(cref);
    CHECK(vref.data_handle() == cref.data());
    CHECK(vref[3] == snip::box<float>{30, 31, 32, 33});
}
#endif

#ifdef SNIP_TEST_XTENSOR
TEST_CASE("xtensor: rank-4 tensor as feature_view") {
    auto f = xt::xtensor<float, 4>::from_shape({2, 3, 4, 5});
    for (std::size_t i = 0; i < f.size(); ++i) f.data()[i] = float(i);
    const auto v = snip::as_feature_view(f);
    static_assert(std::is_same_v<std::remove_const_t<decltype(v)>, snip::feature_view<float>>);
    CHECK(v.data_handle() == f.data());
    CHECK(v.extent(0) == 2);
    CHECK(v.extent(1) == 3);
    CHECK(v.extent(2) == 4);
    CHECK(v.extent(3) == 5);
    CHECK(v.stride(0) == 60);
    CHECK(v.stride(1) == 20);
    CHECK(v.stride(2) == 5);
    CHECK(v.stride(3) == 1);
    CHECK(v.is_contiguous());
    CHECK(v.size() == 120);
    CHECK(v(1, 2, 3, 4) == f(1, 2, 3, 4));
    CHECK(&v(1, 0, 2, 1) == &f(1, 0, 2, 1));
    v(0, 1, 1, 1) = -5.0f;
    CHECK(f(0, 1, 1, 1) == -5.0f);

    const auto& cf = f;
    auto cv = snip::as_feature_view(cf);
    static_assert(std::is_same_v<decltype(cv), snip::feature_view<const float>>);
    CHECK(cv(1, 2, 3, 4) == 119.0f);
}

TEST_CASE("xtensor: axes of extent 1 keep dense strides") {
    // xtensor reports stride 0 along an axis of extent 1.
    auto f = xt::xtensor<float, 4>::from_shape({1, 3, 1, 5});
    REQUIRE(f.strides()[0] == 0);
    const auto v = snip::as_feature_view(f);
    CHECK(v.stride(0) == 15);
    CHECK(v.stride(1) == 5);
    CHECK(v.stride(2) == 5);
    CHECK(v.stride(3) == 1);
    CHECK(v.is_contiguous());
    auto one = xt::xtensor<float, 2>::from_shape({1, 4});
    one(0, 2) = 9.0f;
    const auto b = snip::as_box_view(one);
    CHECK(b.stride(0) == 4);
    CHECK(b.is_contiguous());
    CHECK(b[0].x2 == 9.0f);
    auto w = xt::xtensor<float, 4>::from_shape({2, 1, 1, 1});
    const auto vw = snip::as_feature_view(w);
    CHECK(vw.stride(0) == 1);
    CHECK(vw.is_contiguous());
}

TEST_CASE("xtensor: column-major, fixed, adapted and xarray containers") {
    using CM = xt::xtensor<float, 2, xt::layout_type::column_major>;
    auto cm = CM::from_shape({3, 4});
    for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t k = 0; k < 4; ++k) cm(i, k) = float(10 * i + k);
    const auto v = snip::as_box_view(cm);
    CHECK(v.stride(0) == 1);
    CHECK(v.stride(1) == 3);
    CHECK(v[2] == snip::box<float>{20, 21, 22, 23});

    xt::xtensor_fixed<double, xt::xshape<2, 4>> fx = {{1, 2, 3, 4}, {5, 6, 7, 8}};
    const auto vf = snip::as_box_view(fx);
    CHECK(vf.data_handle() == fx.data());
    CHECK(vf[1] == snip::box<double>{5, 6, 7, 8});

    std::vector<float> raw = {0, 0, 4, 4, 1, 1, 5, 5};
    auto ad = xt::adapt(raw, std::vector<std::size_t>{2, 4});
    const auto va = snip::as_box_view(ad);
    CHECK(va.data_handle() == raw.data());
    CHECK(va[1] == snip::box<float>{1, 1, 5, 5});

    xt::xarray<float> a = xt::xarray<float>::from_shape({2, 4});
    a(1, 3) = 3.0f;
    CHECK(snip::as_box_view(a)[1].y2 == 3.0f);
    xt::xarray<float> a4 = xt::xarray<float>::from_shape({1, 2, 3, 4});
    CHECK(snip::as_feature_view(a4).extent(3) == 4);
}

TEST_CASE("xtensor: bad shapes are rejected with the shape") {
    xt::xarray<float> r3 = xt::xarray<float>::from_shape({2, 4, 3});
    CHECK_THROWS_WITH_AS(snip::as_box_view(r3), doctest::Contains("(2, 4, 3)"), snip::error);
    CHECK_THROWS_WITH_AS(snip::as_box_view(r3), doctest::Contains("rank 2"), snip::error);
    CHECK_THROWS_WITH_AS(snip::as_feature_view(r3), doctest::Contains("(2, 4, 3)"), snip::error);
    xt::xarray<float> five = xt::xarray<float>::from_shape({3, 5});
    CHECK_THROWS_WITH_AS(snip::as_box_view(five), doctest::Contains("shape (3, 5)"), snip::error);
    auto t5 = xt::xtensor<float, 2>::from_shape({3, 5});
    CHECK_THROWS_WITH_AS(snip::as_box_view(t5), doctest::Contains("(N, 4)"), snip::error);
}

TEST_CASE("xtensor: strided views") {
    auto t = xt::xtensor<float, 2>::from_shape({6, 5});
    for (std::size_t i = 0; i < 6; ++i)
        for (std::size_t k = 0; k < 5; ++k) t(i, k) = float(10 * i + k);
    // rows 1 and 3, columns 1..4: offset 6, strides (10, 1)
    const auto v = snip::as_box_view(xt::view(t, xt::range(1, 5, 2), xt::range(1, 5)));
    CHECK(v.data_handle() == t.data() + 6);
    CHECK(v.size() == 2);
    CHECK(v.stride(0) == 10);
    CHECK(v[1] == snip::box<float>{31, 32, 33, 34});
    // reversed rows: a negative stride
    const auto r = snip::as_box_view(xt::view(t, xt::range(5, 0, -2), xt::range(0, 4)));
    CHECK(r.stride(0) == -10);
    CHECK(r[0] == snip::box<float>{50, 51, 52, 53});
    CHECK(r[2] == snip::box<float>{10, 11, 12, 13});
    // an lvalue view; writes land in t
    auto lv = xt::view(t, xt::range(0, 3), xt::range(1, 5));
    snip::as_box_view(lv).set(0, {-1, -2, -3, -4});
    CHECK(t(0, 1) == -1.0f);
    CHECK(t(0, 4) == -4.0f);
    CHECK(t(0, 0) == 0.0f);
    // strided_view
    const auto s = snip::as_box_view(xt::strided_view(t, {xt::range(0, 6, 3), xt::range(1, 5)}));
    CHECK(s.stride(0) == 15);
    CHECK(s[1] == snip::box<float>{31, 32, 33, 34});
    // a view of a const tensor is read-only
    const auto& ct = t;
    auto cv = snip::as_box_view(xt::view(ct, xt::all(), xt::range(0, 4)));
    static_assert(std::is_same_v<decltype(cv), snip::box_view<const float>>);
    CHECK(cv.size() == 6);
    // a feature view of a channel slice
    auto f = xt::xtensor<float, 4>::from_shape({2, 6, 3, 3});
    for (std::size_t i = 0; i < f.size(); ++i) f.data()[i] = float(i);
    const auto fv = snip::as_feature_view(xt::view(f, xt::all(), xt::range(2, 4), xt::all(), xt::all()));
    CHECK(fv.extent(1) == 2);
    CHECK(fv.stride(0) == 54);
    CHECK_FALSE(fv.is_contiguous());
    CHECK(&fv(1, 1, 2, 0) == &f(1, 3, 2, 0));
}
#endif
