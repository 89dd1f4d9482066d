// det_targets.cpp: training targets in snip._det: RPN anchor labels (SNIPER's rules),
// their seeded sampling, and RCNN proposal targets.
#include "det_parts.hpp"

#include <snip/det/rcnn_targets.hpp>
#include <snip/det/rpn_targets.hpp>
#include <snip/det/sampling.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace snip::py {

namespace {

/// What rpn_labels / assign_rpn return.
struct rpn_result {
    pyb::array labels, matched;
    std::size_t positive = 0, negative = 0, ignored = 0;
};

/// What rcnn_targets returns.
struct rcnn_result {
    pyb::array rois, source, labels, matched, max_iou, deltas;
    std::size_t foreground = 0;
};

overlap_measure measure_of(const std::string& s) {
    if (s == "iou") return overlap_measure::iou;
    if (s == "anchor_fraction") return overlap_measure::anchor_fraction;
    bad_argument("crowd_measure", "expected 'iou' or 'anchor_fraction', got '", s, "'");
}

rpn_options make_rpn_options(double negative_below, double positive_from, bool best_anchor_positive,
                             double ignore_invalid_above, double ignore_crowd_above,
                             const std::string& crowd_measure, const std::string& convention,
                             int batch, double fg_fraction, unsigned threads) {
    rpn_options o;
    o.negative_below = negative_below;
    o.positive_from = positive_from;
    o.best_anchor_positive = best_anchor_positive;
    o.ignore_invalid_above = ignore_invalid_above;
    o.ignore_crowd_above = ignore_crowd_above;
    o.crowd_measure = measure_of(crowd_measure);
    o.convention = convention_of(convention);
    o.batch = batch;
    o.fg_fraction = fg_fraction;
    o.threads = threads;
    o.validate();
    return o;
}

/// Labels (and, with sample, the sampling) of `anchors` against `gt`.
rpn_result run_rpn(const pyb::array& anchors, const pyb::array& gt, const std::optional<pyb::array>& states,
                   const rpn_options& opt, bool sample, std::uint64_t seed) {
    return with_boxes(anchors, "anchors", [&](auto a) {
        using T = typename decltype(a)::value_type;
        const auto g = same_dtype_boxes<T>(gt, "gt", "anchors");
        const auto st = states_of(states, g.size());
        rpn_assignment r;
        {
            release_gil nogil;
            if (sample) {
                r = snip::assign_rpn(a, g, std::span<const gt_state>(st), opt, seed);
            } else {
                const auto n = static_cast<std::size_t>(a.size());
                r.labels.resize(n);
                r.matched.resize(n);
                r.counts = snip::assign_rpn_labels(a, g, std::span<const gt_state>(st),
                                                   std::span<std::int8_t>(r.labels),
                                                   std::span<std::int32_t>(r.matched), opt);
            }
        }
        rpn_result out;
        const auto n = static_cast<pyb::ssize_t>(r.labels.size());
        out.labels = to_array(std::move(r.labels), {n});
        out.matched = to_array(std::move(r.matched), {n});
        out.positive = r.counts.positive;
        out.negative = r.counts.negative;
        out.ignored = r.counts.ignored;
        return out;
    });
}

const char* rpn_rules_doc = R"doc(
anchors: (N, 4) float32/float64 (any strides); gt: (K, 4) of the same dtype, same pixels.
states: None (every gt valid) or K integers: 0 valid, 1 invalid (out of this scale's
range), 2 crowd. Rules, in order (SNIPER's defaults):
 1. max IoU of each anchor over the VALID gt (0 without any); label 0 when it is below
    negative_below, else -1; matched = index into gt of the first valid gt reaching it
    (-1 when no gt is valid);
 2. best_anchor_positive: for each valid gt whose best IoU over all anchors m is > 0, every
    anchor with IoU exactly m is 1;
 3. label 1 when the max IoU is >= positive_from;
 4. label -1 when the IoU with any INVALID gt is > ignore_invalid_above, or the overlap
    with any CROWD gt ('iou', or 'anchor_fraction': intersection over the anchor's area)
    is > ignore_crowd_above (overrides 1 and 0).
Thresholds are compared in the boxes' dtype; 'inclusive' adds one pixel per side.)doc";

} // namespace

void bind_det_targets(pyb::module_& m) {
    m.attr("GT_VALID") = static_cast<int>(gt_state::valid);
    m.attr("GT_INVALID") = static_cast<int>(gt_state::invalid);
    m.attr("GT_CROWD") = static_cast<int>(gt_state::crowd);

    pyb::class_<rpn_result>(m, "RpnAssignment", pyb::module_local(),
                            "RPN labels of N anchors: labels (int8: 1 positive, 0 negative, -1 "
                            "ignored), matched (int32: index into gt of the best valid gt, -1 if "
                            "none) and the counts of each label.")
        .def_readonly("labels", &rpn_result::labels, "(N,) int8: 1 / 0 / -1.")
        .def_readonly("matched", &rpn_result::matched, "(N,) int32: the best valid gt, -1 if none.")
        .def_readonly("positive", &rpn_result::positive, "The number of labels 1.")
        .def_readonly("negative", &rpn_result::negative, "The number of labels 0.")
        .def_readonly("ignored", &rpn_result::ignored, "The number of labels -1.")
        .def("__iter__",
             [](const rpn_result& r) { return pyb::iter(pyb::make_tuple(r.labels, r.matched)); },
             "Unpacks as (labels, matched).")
        .def("__repr__", [](const rpn_result& r) {
            return snip::concat("RpnAssignment(", r.labels.shape(0), " anchors: ", r.positive,
                                " positive, ", r.negative, " negative, ", r.ignored, " ignored)");
        });

    m.def(
        "rpn_labels",
        [](const pyb::array& anchors, const pyb::array& gt, const std::optional<pyb::array>& states,
           double negative_below, double positive_from, bool best_anchor_positive,
           double ignore_invalid_above, double ignore_crowd_above, const std::string& crowd_measure,
           const std::string& convention, unsigned threads) {
            const auto o = make_rpn_options(negative_below, positive_from, best_anchor_positive,
                                            ignore_invalid_above, ignore_crowd_above, crowd_measure,
                                            convention, 0, 0.5, threads);
            return run_rpn(anchors, gt, states, o, false, 0);
        },
        pyb::arg("anchors"), pyb::arg("gt"), pyb::arg("states") = pyb::none(), pyb::kw_only(),
        pyb::arg("negative_below") = 0.4, pyb::arg("positive_from") = 0.5,
        pyb::arg("best_anchor_positive") = true, pyb::arg("ignore_invalid_above") = 0.3,
        pyb::arg("ignore_crowd_above") = 0.3, pyb::arg("crowd_measure") = "iou",
        pyb::arg("convention") = "continuous", pyb::arg("threads") = 0u,
        (std::string("RPN labels of anchors, SNIPER's rules, without sampling: an RpnAssignment.\n") +
         rpn_rules_doc)
            .c_str());

    m.def(
        "assign_rpn",
        [](const pyb::array& anchors, const pyb::array& gt, const std::optional<pyb::array>& states,
           int batch, double fg_fraction, std::uint64_t seed, double negative_below,
           double positive_from, bool best_anchor_positive, double ignore_invalid_above,
           double ignore_crowd_above, const std::string& crowd_measure, const std::string& convention,
           unsigned threads) {
            const auto o = make_rpn_options(negative_below, positive_from, best_anchor_positive,
                                            ignore_invalid_above, ignore_crowd_above, crowd_measure,
                                            convention, batch, fg_fraction, threads);
            return run_rpn(anchors, gt, states, o, batch > 0, seed);
        },
        pyb::arg("anchors"), pyb::arg("gt"), pyb::arg("states") = pyb::none(), pyb::kw_only(),
        pyb::arg("batch") = 256, pyb::arg("fg_fraction") = 0.5, pyb::arg("seed") = 0u,
        pyb::arg("negative_below") = 0.4, pyb::arg("positive_from") = 0.5,
        pyb::arg("best_anchor_positive") = true, pyb::arg("ignore_invalid_above") = 0.3,
        pyb::arg("ignore_crowd_above") = 0.3, pyb::arg("crowd_measure") = "iou",
        pyb::arg("convention") = "continuous", pyb::arg("threads") = 0u,
        (std::string("rpn_labels, then sample_labels(labels, batch, fg_fraction, seed) unless batch "
                     "is 0: an RpnAssignment whose counts are those after sampling. Same seed, same "
                     "inputs: same labels on every platform.\n") +
         rpn_rules_doc)
            .c_str());

    m.def(
        "sample_labels",
        [](const pyb::array& labels, int batch, double fg_fraction, std::uint64_t seed) {
            const auto v = integers_of(labels, -1, "labels");
            std::vector<std::int8_t> l(v.size());
            for (std::size_t i = 0; i < v.size(); ++i) {
                if (v[i] < -1 || v[i] > 1)
                    bad_argument("labels", "entry ", i, " is ", v[i], "; expected 1, 0 or -1");
                l[i] = static_cast<std::int8_t>(v[i]);
            }
            {
                release_gil nogil;
                snip::sample_labels(std::span<std::int8_t>(l), batch, fg_fraction, seed);
            }
            const auto n = static_cast<pyb::ssize_t>(l.size());
            return to_array(std::move(l), {n});
        },
        pyb::arg("labels"), pyb::arg("batch") = 256, pyb::arg("fg_fraction") = 0.5,
        pyb::arg("seed") = 0u,
        R"doc(Seeded subsampling of anchor labels; returns a new int8 array (the input is unchanged).

When more than floor(fg_fraction * batch) labels are 1, a uniformly random excess of them
becomes -1; then when more than batch - (positives left) are 0, a random excess of those
becomes -1. labels: 1-D integers in {1, 0, -1}. Same seed, same labels: same result.)doc");

    pyb::class_<rcnn_result>(m, "RcnnTargets", pyb::module_local(),
                             "The RoIs of one chip and their targets; row r of every array "
                             "belongs to rois[r].")
        .def_readonly("rois", &rcnn_result::rois, "(R, 4): kept proposals, then appended gt.")
        .def_readonly("source", &rcnn_result::source,
                      "(R,) int64: the proposal index, or len(proposals) + g for gt g.")
        .def_readonly("labels", &rcnn_result::labels,
                      "(R,) int32: class of the matched gt (>= 1), 0 = background.")
        .def_readonly("matched", &rcnn_result::matched,
                      "(R,) int32: the labelling gt of max IoU, -1 if none.")
        .def_readonly("max_iou", &rcnn_result::max_iou, "(R,): that IoU.")
        .def_readonly("deltas", &rcnn_result::deltas,
                      "(R, 4): regression targets (dx, dy, dw, dh); 0 for background.")
        .def_readonly("foreground", &rcnn_result::foreground, "The number of RoIs with label > 0.")
        .def("__len__", [](const rcnn_result& r) { return r.rois.shape(0); }, "The number of RoIs.")
        .def("__repr__", [](const rcnn_result& r) {
            return snip::concat("RcnnTargets(", r.rois.shape(0), " rois, ", r.foreground, " foreground)");
        });

    m.def(
        "rcnn_targets",
        [](const pyb::array& proposals, const pyb::array& gt, const std::optional<pyb::array>& states,
           const std::optional<pyb::array>& classes, std::pair<double, double> range,
           double range_factor, bool append_gt, double fg_iou, bool match_invalid_gt,
           const std::vector<double>& means, const std::vector<double>& stds, int batch,
           double fg_fraction, const std::string& convention, std::uint64_t seed) {
            rcnn_options o;
            o.range = {range.first, range.second};
            o.range_factor = range_factor;
            o.append_gt = append_gt;
            o.fg_iou = fg_iou;
            o.match_invalid_gt = match_invalid_gt;
            four_of(means, "means", o.means);
            four_of(stds, "stds", o.stds);
            o.batch = batch;
            o.fg_fraction = fg_fraction;
            o.convention = convention_of(convention);
            o.validate();
            return with_boxes(proposals, "proposals", [&](auto p) {
                using T = typename decltype(p)::value_type;
                const auto g = same_dtype_boxes<T>(gt, "gt", "proposals");
                const auto st = states_of(states, g.size());
                std::vector<std::int32_t> cls;
                if (classes) {
                    const auto v = integers_of(*classes, g.size(), "classes");
                    cls.reserve(v.size());
                    for (std::size_t i = 0; i < v.size(); ++i) {
                        if (v[i] < 1 || v[i] > std::numeric_limits<std::int32_t>::max())
                            bad_argument("classes", "entry ", i, " is ", v[i],
                                         "; classes start at 1 (0 is background)");
                        cls.push_back(static_cast<std::int32_t>(v[i]));
                    }
                }
                rcnn_targets<T> r;
                {
                    release_gil nogil;
                    r = snip::rcnn_proposal_targets(p, g, std::span<const gt_state>(st),
                                                    std::span<const std::int32_t>(cls), o, seed);
                }
                rcnn_result out;
                const auto n = static_cast<pyb::ssize_t>(r.rois.size());
                out.rois = boxes_to_array(std::move(r.rois));
                out.source = to_array(std::move(r.source), {n});
                out.labels = to_array(std::move(r.labels), {n});
                out.matched = to_array(std::move(r.matched), {n});
                out.max_iou = to_array(std::move(r.max_iou), {n});
                out.deltas = to_array(std::move(r.deltas), {n, pyb::ssize_t{4}});
                out.foreground = r.foreground;
                return out;
            });
        },
        pyb::arg("proposals"), pyb::arg("gt"), pyb::arg("states") = pyb::none(),
        pyb::arg("classes") = pyb::none(), pyb::kw_only(),
        pyb::arg("range") = std::pair<double, double>{-1.0, -1.0}, pyb::arg("range_factor") = 1.0,
        pyb::arg("append_gt") = true, pyb::arg("fg_iou") = 0.5, pyb::arg("match_invalid_gt") = true,
        pyb::arg("means") = std::vector<double>{0, 0, 0, 0},
        pyb::arg("stds") = std::vector<double>{0.1, 0.1, 0.2, 0.2}, pyb::arg("batch") = 0,
        pyb::arg("fg_fraction") = 0.25, pyb::arg("convention") = "continuous", pyb::arg("seed") = 0u,
        R"doc(RCNN targets of one chip's proposals: an RcnnTargets.

proposals: (P, 4) float32/float64 (decoded and clipped, same pixels as gt); gt: (K, 4) of
the same dtype; states: None or K integers (0 valid, 1 invalid, 2 crowd); classes: None
(class 1 for all) or K class ids >= 1. Steps:
 1. proposals whose sqrt(w * h) / range_factor is outside range = (lo, hi) (lo <= size < hi,
    -1 open) are dropped, and so are boxes with no positive side;
 2. append_gt: every VALID gt is appended as a RoI;
 3. each RoI is matched to the labelling gt (valid, plus invalid with match_invalid_gt;
    crowd never) of max IoU (first on ties): label = classes[g] if that IoU > fg_iou, else 0;
 4. foreground RoIs get deltas encode(roi, gt[g]) with means / stds;
 5. batch > 0: at most batch RoIs, at most floor(fg_fraction * batch) foreground, sampled
    reproducibly from seed (input order kept).)doc");
}

} // namespace snip::py
