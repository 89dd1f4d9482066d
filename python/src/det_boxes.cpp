// det_boxes.cpp: box regression deltas (encode / decode with means, stds, pixel
// convention, the guarded exp and clipping) and IoU matrices in snip._det.
#include "det_parts.hpp"

#include <snip/det/box_coder.hpp>
#include <snip/det/iou.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace snip::py {

namespace {

template <class T>
box_coder<T> make_coder(const std::vector<double>& means, const std::vector<double>& stds,
                        const std::string& convention, double max_log_scale) {
    double mu[4], sd[4];
    four_of(means, "means", mu);
    four_of(stds, "stds", sd);
    box_coder<T> c;
    for (int k = 0; k < 4; ++k) c.means[k] = T(mu[k]), c.stds[k] = T(sd[k]);
    c.convention = convention_of(convention);
    c.max_log_scale = T(max_log_scale);
    c.validate();
    return c;
}

const std::vector<double> zero_means{0, 0, 0, 0};
const std::vector<double> unit_stds{1, 1, 1, 1};

} // namespace

void bind_det_boxes(pyb::module_& m) {
    m.attr("DEFAULT_MAX_LOG_SCALE") = snip::default_max_log_scale;
    m.attr("RCNN_STDS") = pyb::make_tuple(0.1, 0.1, 0.2, 0.2);

    m.def(
        "encode_boxes",
        [](const pyb::array& refs, const pyb::array& targets, const std::vector<double>& means,
           const std::vector<double>& stds, const std::string& convention) {
            return with_boxes(refs, "refs", [&](auto r) -> pyb::array {
                using T = typename decltype(r)::value_type;
                const auto t = same_dtype_boxes<T>(targets, "targets", "refs");
                const auto coder = make_coder<T>(means, stds, convention, snip::default_max_log_scale);
                if (t.size() != r.size())
                    bad_argument("targets", "got ", t.size(), " target boxes for ", r.size(), " refs");
                const auto n = r.size();
                std::vector<T> out(static_cast<std::size_t>(n) * 4);
                {
                    release_gil nogil;
                    snip::encode_boxes(coder, r, t, box_view<T>(out.data(), n));
                }
                return to_array(std::move(out), {static_cast<pyb::ssize_t>(n), pyb::ssize_t{4}});
            });
        },
        pyb::arg("refs"), pyb::arg("targets"), pyb::kw_only(), pyb::arg("means") = zero_means,
        pyb::arg("stds") = unit_stds, pyb::arg("convention") = "continuous",
        R"doc(Regression deltas (N, 4) = (dx, dy, dw, dh) that move each reference box onto its target.

With e = 0 ('continuous') or 1 ('inclusive'): w = x2 - x1 + e, cx = (x1 + x2) / 2 (same in
y), dx = ((t.cx - r.cx) / r.w - means[0]) / stds[0], dw = (log(t.w / r.w) - means[2]) /
stds[2]. refs and targets: (N, 4) arrays of the same dtype (float32 or float64, any
strides); the result has that dtype. RCNN_STDS are Faster R-CNN's stds. Raises snip.Error
on a box without positive width/height (naming it) or a bad std/mean.)doc");

    m.def(
        "decode_boxes",
        [](const pyb::array& refs, const pyb::array& deltas, const std::vector<double>& means,
           const std::vector<double>& stds, const std::string& convention, double max_log_scale,
           const std::optional<std::pair<double, double>>& clip) {
            return with_boxes(refs, "refs", [&](auto r) -> pyb::array {
                using T = typename decltype(r)::value_type;
                const auto d = same_dtype_boxes<T>(deltas, "deltas", "refs");
                const auto coder = make_coder<T>(means, stds, convention, max_log_scale);
                if (d.size() != r.size())
                    bad_argument("deltas", "got ", d.size(), " delta rows for ", r.size(), " refs");
                std::vector<box<T>> out;
                {
                    release_gil nogil;
                    out = clip ? snip::decode_boxes(coder, r, d, T(clip->first), T(clip->second))
                               : snip::decode_boxes(coder, r, d);
                }
                return boxes_to_array(std::move(out));
            });
        },
        pyb::arg("refs"), pyb::arg("deltas"), pyb::kw_only(), pyb::arg("means") = zero_means,
        pyb::arg("stds") = unit_stds, pyb::arg("convention") = "continuous",
        pyb::arg("max_log_scale") = snip::default_max_log_scale, pyb::arg("clip") = pyb::none(),
        R"doc(The (N, 4) boxes the deltas (dx, dy, dw, dh) predict from the reference boxes.

The exact inverse of encode_boxes: dx' = dx * stds[0] + means[0], cx = dx' * r.w + r.cx,
w = exp(min(dw', max_log_scale)) * r.w, x1 = cx - (w - e) / 2, x2 = cx + (w - e) / 2 (the
clamp keeps huge deltas finite). clip=(width, height) clips the boxes to [0, width] x
[0, height] ('continuous') or [0, width - 1] x [0, height - 1] ('inclusive').
refs and deltas: (N, 4) arrays of the same dtype (float32 or float64, any strides).)doc");

    m.def(
        "iou_matrix",
        [](const pyb::array& a, const pyb::array& b, const std::string& convention, unsigned threads) {
            const auto conv = convention_of(convention);
            return with_boxes(a, "a", [&](auto va) -> pyb::array {
                using T = typename decltype(va)::value_type;
                const auto vb = same_dtype_boxes<T>(b, "b", "a");
                std::vector<T> out;
                {
                    release_gil nogil;
                    out = snip::iou_matrix(va, vb, conv, threads);
                }
                return to_array(std::move(out), {static_cast<pyb::ssize_t>(va.size()),
                                                 static_cast<pyb::ssize_t>(vb.size())});
            });
        },
        pyb::arg("a"), pyb::arg("b"), pyb::arg("convention") = "continuous", pyb::arg("threads") = 0u,
        R"doc(The (N, M) IoU matrix of boxes a (N, 4) and b (M, 4) (same dtype, float32 or float64).

out[i, j] = inter / (area_a + area_b - inter), 0 when both boxes are empty; 'inclusive'
adds one pixel to every side (the original SNIPER overlaps). Large matrices are split
over `threads` threads (0 = snip's default).)doc");
}

} // namespace snip::py
