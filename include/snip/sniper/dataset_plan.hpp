// dataset_plan.hpp: one epoch's chips for a whole dataset, on several threads.
#pragma once

#include <snip/core/parallel.hpp>
#include <snip/sniper/dataset.hpp>
#include <snip/sniper/negatives.hpp>
#include <snip/sniper/plan.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace snip {

/// @brief One image's chips for one epoch.
struct image_chips_plan {
    image_plan plan;               ///< positive chips and per-scale valid boxes
    std::vector<chip> negatives;   ///< every negative chip mined (empty without proposals)
    std::vector<int> sampled;      ///< indices into `negatives` used this epoch
};

/// @brief Options of plan_dataset.
struct dataset_plan_options {
    std::uint64_t seed = 0;
    int epoch = 0;
    unsigned threads = 0;               ///< 0: std::thread::hardware_concurrency()
    bool mine_ground_truth = true;      ///< count ground truth among mining candidates (original)
    /// Called on the calling thread about every `progress_period` with (done, total).
    std::function<void(std::size_t, std::size_t)> progress;
    std::chrono::milliseconds progress_period{500};
};

/// @brief Plans one epoch of a dataset: positive chips of every image, and with
/// proposals (one entry per image, same order) the mined and sampled negative chips.
/// Images are split over threads in small blocks; the result is independent of the
/// number of threads. The first error thrown by any image is rethrown.
inline std::vector<image_chips_plan> plan_dataset(const plan_config& cfg, const dataset& ds,
                                                  const std::vector<image_proposals>* proposals,
                                                  const dataset_plan_options& opt = {}) {
    cfg.validate();
    require(!proposals || proposals->size() == ds.images.size(), "plan_dataset: ",
            proposals ? proposals->size() : 0, " proposal lists for ", ds.images.size(), " images");
    const int stride = epoch_stride(cfg, opt.seed, opt.epoch);
    std::vector<image_chips_plan> out(ds.images.size());
    std::atomic<std::size_t> next{0}, done{0};
    std::exception_ptr err;
    std::mutex err_mu;
    constexpr std::size_t block = 32;
    auto work = [&] {
        plan_workspace ws;
        for (;;) {
            const std::size_t b0 = next.fetch_add(block);
            if (b0 >= ds.images.size()) return;
            const std::size_t b1 = std::min(ds.images.size(), b0 + block);
            try {
                for (std::size_t i = b0; i < b1; ++i) {
                    const auto& im = ds.images[i];
                    auto& o = out[i];
                    const auto gt = as_box_view(im.boxes);
                    try {
                        o.plan = plan_image(cfg, im.width, im.height, box_view<const double>(gt),
                                            im.crowd, ws, stride);
                    } catch (const error& e) {
                        fail(ds.source.empty() ? std::string("dataset") : ds.source, ": images[", i,
                             "] (id ", im.id, "): ", e.what());
                    }
                    if (proposals) {
                        const auto& pr = (*proposals)[i].boxes;
                        const box_view<const double> pv = as_box_view(pr);
                        const box_view<const double> gv =
                            opt.mine_ground_truth ? box_view<const double>(gt)
                                                  : box_view<const double>();
                        o.negatives = mine_negatives(cfg, im.width, im.height, o.plan, pv, gv, ws,
                                                     stride);
                        o.sampled = sample_negatives(o.negatives.size(), cfg.negatives_per_image,
                                                     opt.seed, opt.epoch, im.id);
                    }
                }
            } catch (...) {
                std::lock_guard<std::mutex> lk(err_mu);
                if (!err) err = std::current_exception();
                next.store(ds.images.size());
                return;
            }
            done.fetch_add(b1 - b0);
        }
    };
    unsigned nt = opt.threads ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
    nt = static_cast<unsigned>(
        std::max<std::size_t>(1, std::min<std::size_t>(nt, (ds.images.size() + block - 1) / block)));
    std::mutex mu;
    std::condition_variable cv;
    unsigned running = nt;
    std::vector<std::thread> pool;
    pool.reserve(nt);
    try {
        for (unsigned t = 0; t < nt; ++t)
            pool.push_back(detail::start_thread([&] {
                work();
                std::lock_guard<std::mutex> lk(mu);
                --running;
                cv.notify_all();
            }));
    } catch (const std::system_error& e) {
        next.store(ds.images.size());  // the started workers finish their block and return
        for (auto& t : pool) t.join();
        detail::thread_start_failed("plan_dataset", pool.size() + 1, nt, e);
    }
    {
        // This thread reports progress while the workers run.
        std::unique_lock<std::mutex> lk(mu);
        while (!cv.wait_for(lk, opt.progress_period, [&] { return running == 0; }))
            if (opt.progress) opt.progress(done.load(), ds.images.size());
    }
    for (auto& t : pool) t.join();
    if (err) std::rethrow_exception(err);
    if (opt.progress) opt.progress(ds.images.size(), ds.images.size());
    return out;
}

} // namespace snip
