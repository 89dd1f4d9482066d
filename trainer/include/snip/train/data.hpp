// data.hpp: the SNIPER trainer's data pipeline: one epoch's chip jobs, chip images and
// per-chip ground truth, batched into LibTorch tensors by background worker threads.
//
//   snip::dataset_plan_options po;
//   po.seed = seed, po.epoch = epoch;
//   auto plans = snip::plan_dataset(cfg, ds, &proposals, po);
//   auto jobs = snip::train::make_chip_jobs(plans, {.seed = seed, .epoch = epoch});
//   snip::train::chip_loader loader(ds, cfg, std::move(jobs), snip::train::files_in(ds, image_dir),
//                              {.batch_size = 16, .workers = 2, .max_batches = 2});
//   while (auto b = loader.next()) train_step(b->images, b->targets);
//
// Coordinates: a chip is `snip::chip::rect` in SCALED-image pixels in the plan's pixel
// convention (cfg.convention). Its image is the scaled image's pixels [x1, x2 + e) x
// [y1, y2 + e) (e = 1 for pixel_convention::inclusive, 0 for continuous), at most
// chip_size on a side, resampled in one pass from the original image (image.hpp) and
// placed at the top-left of a chip_size x chip_size tensor whose remainder is 0 (after
// normalisation: the mean colour), as the original loader pads images smaller than a chip.
// Target boxes are in that chip's pixels (origin at its top-left corner), in the plan's
// convention, as snip::assign_chip gives them.
#pragma once

#include <snip/train/image.hpp>

#include <snip/sniper/chip_gt.hpp>
#include <snip/sniper/dataset.hpp>
#include <snip/sniper/dataset_plan.hpp>
#include <snip/core/random.hpp>
#include <snip/sniper/plan.hpp>

#include <ATen/ATen.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace snip::train {

// ---------------------------------------------------------------------------------------
// Chip jobs

/// @brief How chips are mirrored.
enum class flip_policy {
    none,   ///< never
    random, ///< each chip with probability 1/2, drawn from the seed
    both    ///< every chip twice, plain and mirrored (the default: the original SNIPER adds a
            ///< flipped copy of every image, doubling the epoch)
};

/// @brief One chip to load: which image, which chip (its scale, factor, rectangle in
/// scaled px and the boxes assigned to it), and whether it is mirrored.
struct chip_job {
    std::size_t image = 0; ///< index into snip::dataset::images
    snip::chip chip;
    bool negative = false; ///< a sampled negative chip (usually no ground truth assigned; at
                           ///< most the few boxes the miner itself assigned, chip::boxes)
    bool flipped = false;
};

/// @brief Options of make_chip_jobs.
struct job_options {
    std::uint64_t seed = 0;
    int epoch = 0;
    flip_policy flip = flip_policy::both;
    bool shuffle = true;   ///< false: image order, positives then negatives (debugging)
    bool negatives = true; ///< include each image's sampled negative chips
};

/// @brief The chips of one planned epoch as a list of jobs: for every image (in dataset
/// order) its positive chips, then its sampled negatives (`plan.sampled`), mirrored per
/// `opt.flip`, then shuffled. The list depends only on the plans and (seed, epoch),
/// portably (SplitMix64 and Fisher-Yates, no std:: distributions).
inline std::vector<chip_job> make_chip_jobs(const std::vector<snip::image_chips_plan>& plans,
                                            const job_options& opt = {}) {
    std::vector<chip_job> jobs;
    auto add = [&](std::size_t i, const snip::chip& c, bool negative) {
        if (opt.flip == flip_policy::both) {
            jobs.push_back({i, c, negative, false});
            jobs.push_back({i, c, negative, true});
        } else {
            jobs.push_back({i, c, negative, false});
        }
    };
    for (std::size_t i = 0; i < plans.size(); ++i) {
        const auto& p = plans[i];
        for (const auto& c : p.plan.positives)
            add(i, c, false);
        if (!opt.negatives) continue;
        for (int s : p.sampled) {
            snip::require(s >= 0 && std::size_t(s) < p.negatives.size(), "make_chip_jobs: image ",
                          i, ": sampled negative ", s, " of ", p.negatives.size());
            add(i, p.negatives[std::size_t(s)], true);
        }
    }
    const std::uint64_t base = snip::mix(opt.seed, std::uint64_t(opt.epoch) + 0x5ca1ab1e);
    if (opt.flip == flip_policy::random) {
        snip::splitmix64 g{snip::mix(base, 1)};
        for (auto& j : jobs)
            j.flipped = g.below(2) == 1;
    }
    if (opt.shuffle) {
        snip::splitmix64 g{snip::mix(base, 2)};
        for (std::size_t k = jobs.size(); k > 1; --k)
            std::swap(jobs[k - 1], jobs[std::size_t(g.below(k))]);
    }
    return jobs;
}

// ---------------------------------------------------------------------------------------
// One chip: where its pixels come from, and its ground truth

/// @brief Where a chip's pixels come from and where they go.
struct chip_geometry {
    int width = 0;          ///< content width in the chip tensor, px (<= chip_size)
    int height = 0;         ///< content height, px (<= chip_size)
    snip::box<double> crop; ///< the same region in ORIGINAL px (continuous), for crop_resize
};

/// @brief The geometry of chip `c` for chips of side `chip_size` under convention `conv`:
/// scaled pixels [x1, x2 + e) x [y1, y2 + e), capped at chip_size (the original layout's
/// corner chips one pixel longer than a chip lose that pixel), mapped to original pixels
/// by the chip's exact factor (the same mapping as its ground truth).
inline chip_geometry chip_crop(const snip::chip& c, int chip_size, snip::pixel_convention conv) {
    const int e = conv == snip::pixel_convention::inclusive ? 1 : 0;
    chip_geometry g;
    g.width = std::min(chip_size, c.rect.x2 - c.rect.x1 + e);
    g.height = std::min(chip_size, c.rect.y2 - c.rect.y1 + e);
    snip::require(g.width > 0 && g.height > 0 && c.factor > 0, "chip [", c.rect.x1, ", ", c.rect.y1,
                  ", ", c.rect.x2, ", ", c.rect.y2, "] at factor ", c.factor, " is empty");
    g.crop = {c.rect.x1 / c.factor, c.rect.y1 / c.factor, (c.rect.x1 + g.width) / c.factor,
              (c.rect.y1 + g.height) / c.factor};
    return g;
}

/// @brief Contiguous class indices for a detector: COCO category ids (sparse, 1..90)
/// become 1..K in increasing id order; 0 is background. Without categories in the
/// dataset, the ids that occur on boxes are used.
class class_map {
public:
    class_map() = default;
    explicit class_map(const snip::dataset& ds) {
        std::vector<int> ids;
        for (const auto& c : ds.categories)
            ids.push_back(c.id);
        if (ids.empty())
            for (const auto& im : ds.images)
                ids.insert(ids.end(), im.categories.begin(), im.categories.end());
        std::sort(ids.begin(), ids.end());
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
        for (std::size_t k = 0; k < ids.size(); ++k)
            index_[ids[k]] = int(k) + 1;
        ids_ = std::move(ids);
    }
    /// Number of object classes K (background not counted).
    int num_classes() const { return int(ids_.size()); }
    /// The contiguous index (1..K) of a category id. @throws snip::error for an unknown id.
    int operator()(int category_id) const {
        auto it = index_.find(category_id);
        snip::require(it != index_.end(), "class_map: category id ", category_id,
                      " is not among the dataset's ", ids_.size(), " categories");
        return it->second;
    }
    /// The category id of contiguous index k (1..K).
    int category(int k) const { return ids_.at(std::size_t(k - 1)); }

private:
    std::unordered_map<int, int> index_;
    std::vector<int> ids_;
};

/// @brief The ground truth of one chip as tensors.
struct chip_target {
    at::Tensor boxes;    ///< [n, 4] float32, xyxy in chip px, plan convention, mirrored if flipped
    at::Tensor classes;  ///< [n] int64, contiguous class index 1..K (class_map)
    at::Tensor states;   ///< [n] uint8, snip::gt_state: 0 valid, 1 invalid, 2 crowd
    at::Tensor gt_index; ///< [n] int64, index of each box in the image's list
    chip_job job;        ///< where the chip came from
    int width = 0;       ///< content width in the chip tensor (the rest is padding)
    int height = 0;      ///< content height
    /// The valid range of the chip's scale in CHIP pixels (the plan's range x the chip's
    /// factor; open ends stay open): the detector drops training proposals outside it, as the
    /// original (SNIPER lib/iterators/MNIteratorE2E.py: srange = VALID_RANGES[scale] x
    /// im_scale, passed to MultiProposalTarget). Default: open, nothing dropped.
    snip::valid_range range{};
};

/// @brief The ground truth of `job` (snip::assign_chip), kept inside the chip's content,
/// mirrored when the job is flipped: x' = (width - e) - x with e = 1 under the inclusive
/// convention (last pixel index), 0 under continuous (x' = width - x).
inline chip_target make_target(const snip::dataset& ds, const snip::plan_config& cfg,
                               const chip_job& job, const class_map& classes,
                               const snip::assign_options& opt = {}) {
    snip::require(job.image < ds.images.size(), "chip job: image index ", job.image, " but ",
                  ds.images.size(), " images");
    const auto& im = ds.images[job.image];
    const chip_geometry g = chip_crop(job.chip, cfg.chip_size, cfg.convention);
    const auto view = snip::as_box_view(im.boxes);
    const std::vector<snip::chip_gt> gt = snip::assign_chip(
        cfg, job.chip, im.width, im.height, snip::box_view<const double>(view), im.crowd, opt);
    const auto n = std::int64_t(gt.size());
    chip_target t;
    t.boxes = at::empty({n, 4}, at::kFloat);
    t.classes = at::empty({n}, at::kLong);
    t.states = at::empty({n}, at::kByte);
    t.gt_index = at::empty({n}, at::kLong);
    float* b = t.boxes.data_ptr<float>();
    std::int64_t* cl = t.classes.data_ptr<std::int64_t>();
    std::uint8_t* st = t.states.data_ptr<std::uint8_t>();
    std::int64_t* gi = t.gt_index.data_ptr<std::int64_t>();
    const float e = cfg.convention == snip::pixel_convention::inclusive ? 1.f : 0.f;
    const float mx = float(g.width) - e, my = float(g.height) - e;
    for (std::size_t k = 0; k < gt.size(); ++k) {
        snip::box<float> x = snip::clip(gt[k].b, mx, my);
        if (job.flipped) x = {mx - x.x2, x.y1, mx - x.x1, x.y2};
        b[4 * k + 0] = x.x1;
        b[4 * k + 1] = x.y1;
        b[4 * k + 2] = x.x2;
        b[4 * k + 3] = x.y2;
        const auto i = std::size_t(gt[k].index);
        cl[k] = classes(im.categories.at(i));
        st[k] = std::uint8_t(gt[k].state);
        gi[k] = gt[k].index;
    }
    t.job = job;
    t.width = g.width;
    t.height = g.height;
    snip::require(job.chip.scale >= 0 && std::size_t(job.chip.scale) < cfg.ranges.size(),
                  "chip job: chip of scale ", job.chip.scale, " but the plan has ",
                  cfg.ranges.size(), " valid ranges");
    const snip::valid_range& r = cfg.ranges[std::size_t(job.chip.scale)];
    t.range = {r.has_lo() ? r.lo * job.chip.factor : -1.0, r.has_hi() ? r.hi * job.chip.factor : -1.0};
    return t;
}

/// @brief Writes the image of `job` into `dst` (chip_size x chip_size planes): the
/// content resampled at the top-left, zeros elsewhere.
inline void fill_chip(const image& src, const snip::plan_config& cfg, const chip_job& job,
                      chw_view dst, const normalisation& norm = {}) {
    const chip_geometry g = chip_crop(job.chip, cfg.chip_size, cfg.convention);
    const int s = cfg.chip_size;
    crop_resize(src, g.crop, g.width, g.height, job.flipped, dst, norm);
    for (int c = 0; c < 3; ++c) {
        float* plane = dst.data + c * dst.plane_stride;
        if (g.width < s)
            for (int y = 0; y < g.height; ++y)
                std::fill(plane + y * dst.row_stride + g.width, plane + y * dst.row_stride + s,
                          0.f);
        for (int y = g.height; y < s; ++y)
            std::fill_n(plane + y * dst.row_stride, s, 0.f);
    }
}

// ---------------------------------------------------------------------------------------
// Decoded images: where they come from, and a small cache

/// @brief Gives the decoded image of dataset image `index`. Called from worker threads
/// concurrently: it must be thread-safe. Errors should name the file.
using image_source = std::function<image(std::size_t index)>;

/// @brief Images read from `dir / file_name` (dataset::images[i].file_name). The
/// dataset must outlive the source.
inline image_source files_in(const snip::dataset& ds, std::string dir) {
    return [&ds, dir = std::move(dir)](std::size_t i) {
        return decode_image((std::filesystem::path(dir) / ds.images.at(i).file_name).string());
    };
}

/// @brief A thread-safe LRU cache of decoded images bounded by their bytes. Several
/// threads asking for the same missing image wait for one decode. An image in use stays
/// alive (shared_ptr) after eviction.
class image_cache {
public:
    explicit image_cache(std::size_t max_bytes) : max_bytes_(max_bytes) {}

    /// The image under `key`, from the cache or from `load()` (run on this thread).
    /// An error of `load` propagates from this call; threads that were waiting for the
    /// same image get a snip::error with its message. Failures are not cached.
    template <class Load>
    std::shared_ptr<const image> get(std::size_t key, Load&& load) {
        std::unique_lock<std::mutex> lk(mu_);
        if (auto it = map_.find(key); it != map_.end()) {
            ++hits_;
            lru_.splice(lru_.begin(), lru_, it->second.pos);
            auto fut = it->second.value;
            lk.unlock();
            const loaded& r = fut.get();
            if (!r.img) throw snip::error(r.error);
            return r.img;
        }
        ++misses_;
        std::promise<loaded> promise;
        lru_.push_front(key);
        map_.emplace(key, entry{promise.get_future().share(), 0, lru_.begin()});
        lk.unlock();
        std::shared_ptr<const image> img;
        try {
            img = std::make_shared<const image>(load());
        } catch (...) {
            // Waiters get the message, not this exception object (never shared by threads).
            std::string msg = "unknown error loading an image";
            try {
                throw;
            } catch (const std::exception& e) {
                msg = e.what();
            } catch (...) {
            }
            lk.lock();
            if (auto it = map_.find(key); it != map_.end()) {
                lru_.erase(it->second.pos);
                map_.erase(it);
            }
            lk.unlock();
            promise.set_value({nullptr, std::move(msg)});
            throw;
        }
        lk.lock();
        auto& e = map_.at(key);
        e.bytes = img->bytes();
        bytes_ += e.bytes;
        evict(key);
        lk.unlock();
        promise.set_value({img, {}});
        return img;
    }

    std::size_t hits() const {
        std::lock_guard<std::mutex> lk(mu_);
        return hits_;
    }
    std::size_t misses() const {
        std::lock_guard<std::mutex> lk(mu_);
        return misses_;
    }
    /// Bytes of the decoded images held now (<= max_bytes, or one image if larger).
    std::size_t bytes() const {
        std::lock_guard<std::mutex> lk(mu_);
        return bytes_;
    }

private:
    struct loaded {
        std::shared_ptr<const image> img; ///< null when loading failed
        std::string error;
    };
    struct entry {
        std::shared_future<loaded> value;
        std::size_t bytes = 0; ///< 0 while loading
        std::list<std::size_t>::iterator pos;
    };

    /// Drops least recently used decoded images until the budget holds (never `keep`,
    /// never one still loading).
    void evict(std::size_t keep) {
        for (auto it = lru_.end(); bytes_ > max_bytes_ && it != lru_.begin();) {
            --it;
            if (*it == keep) continue;
            auto m = map_.find(*it);
            if (m->second.bytes == 0) continue;
            bytes_ -= m->second.bytes;
            map_.erase(m);
            it = lru_.erase(it);
        }
    }

    std::size_t max_bytes_;
    mutable std::mutex mu_;
    std::unordered_map<std::size_t, entry> map_;
    std::list<std::size_t> lru_; ///< most recent first
    std::size_t bytes_ = 0, hits_ = 0, misses_ = 0;
};

// ---------------------------------------------------------------------------------------
// Batches and the prefetching loader

/// @brief B chips: images [B, 3, S, S] float32 (normalised, CHW) and their targets.
struct chip_batch {
    std::size_t index = 0; ///< batch number in the epoch, 0-based
    at::Tensor images;
    std::vector<chip_target> targets;
};

/// @brief Options of chip_loader.
struct loader_options {
    int batch_size = 16;
    /// Background threads decoding and resampling; 0 builds each batch inside next().
    unsigned workers = 2;
    /// Q: batches alive in the pipeline (being built or ready, not yet returned by
    /// next()) never exceed this: the loader holds at most Q x B x 3 x S x S floats
    /// (plus whatever batches the consumer keeps).
    std::size_t max_batches = 2;
    std::size_t cache_bytes = std::size_t(64) << 20; ///< decoded-image LRU budget
    bool drop_last = false;                          ///< drop a last batch smaller than batch_size
    normalisation norm{};
    snip::assign_options assign{};
};

/// @brief Loads the chips of `jobs` in batches of B (batch k = jobs [kB, kB + B), in
/// that order, whatever the number of workers) on background threads, at most Q batches
/// ahead of the consumer. An error in a worker (a missing or corrupt image, ...) is
/// rethrown by next() when the consumer reaches the batch that failed, as a snip::error
/// naming the image file; after it the loader stops. The destructor stops and joins the
/// workers (a batch being built is abandoned at its next chip).
/// The dataset must outlive the loader; `cfg` and `jobs` are copied.
class chip_loader {
public:
    chip_loader(const snip::dataset& ds, snip::plan_config cfg, std::vector<chip_job> jobs,
                image_source source, loader_options opt = {})
        : ds_(ds), cfg_(std::move(cfg)), jobs_(std::move(jobs)), source_(std::move(source)),
          opt_(opt), threaded_(opt.workers > 0), classes_(ds), cache_(opt.cache_bytes) {
        snip::require(opt_.batch_size > 0, "chip_loader: batch size must be > 0, got ",
                      opt_.batch_size);
        snip::require(opt_.max_batches > 0, "chip_loader: max_batches (Q) must be > 0, got ",
                      opt_.max_batches);
        snip::require(bool(source_), "chip_loader: no image source");
        snip::require(cfg_.chip_size > 0, "chip_loader: chip size must be > 0, got ",
                      cfg_.chip_size);
        const std::size_t b = std::size_t(opt_.batch_size);
        num_batches_ = opt_.drop_last ? jobs_.size() / b : (jobs_.size() + b - 1) / b;
        try {
            for (unsigned t = 0; t < opt_.workers; ++t)
                pool_.emplace_back([this] { work(); });
        } catch (...) {
            shutdown(); // threads already started must be joined before the members go
            throw;
        }
    }

    chip_loader(const chip_loader&) = delete;
    chip_loader& operator=(const chip_loader&) = delete;

    ~chip_loader() { shutdown(); }

    /// The next batch in order, or nullopt after the last. Blocks until it is ready.
    /// @throws snip::error naming the image file when building this batch failed (and
    /// again on every later call).
    std::optional<chip_batch> next() {
        std::unique_lock<std::mutex> lk(mu_);
        if (error_) std::rethrow_exception(error_);
        if (next_out_ >= num_batches_) return std::nullopt;
        const std::size_t k = next_out_;
        if (!threaded_) {
            ++next_claim_;
            note_claim();
            lk.unlock();
            slot s = build(k);
            lk.lock();
            return hand_out(k, std::move(s));
        }
        ready_.wait(lk, [&] { return done_.count(k) != 0; });
        slot s = std::move(done_.at(k));
        done_.erase(k);
        return hand_out(k, std::move(s));
    }

    std::size_t num_batches() const { return num_batches_; }
    std::size_t num_chips() const {
        return std::min(jobs_.size(), num_batches_ * std::size_t(opt_.batch_size));
    }
    const std::vector<chip_job>& jobs() const { return jobs_; }
    const class_map& classes() const { return classes_; }
    const image_cache& cache() const { return cache_; }
    /// Batches alive in the pipeline now, and the most there ever were (<= max_batches).
    std::size_t in_flight() const {
        std::lock_guard<std::mutex> lk(mu_);
        return next_claim_ - next_out_;
    }
    std::size_t peak_in_flight() const {
        std::lock_guard<std::mutex> lk(mu_);
        return peak_;
    }

private:
    struct slot {
        std::optional<chip_batch> batch; ///< empty when abandoned or failed
        std::exception_ptr error;
    };

    void shutdown() {
        {
            std::lock_guard<std::mutex> lk(mu_);
            stop_ = true;
        }
        space_.notify_all();
        for (auto& t : pool_)
            t.join();
        pool_.clear();
    }

    void note_claim() { peak_ = std::max(peak_, next_claim_ - next_out_); }

    std::optional<chip_batch> hand_out(std::size_t k, slot s) {
        ++next_out_;
        space_.notify_all();
        if (s.error) {
            error_ = s.error;
            failed_ = true;
            space_.notify_all();
            std::rethrow_exception(error_);
        }
        snip::require(s.batch.has_value(), "chip_loader: batch ", k, " was abandoned");
        return std::move(s.batch);
    }

    void work() {
        std::unique_lock<std::mutex> lk(mu_);
        for (;;) {
            space_.wait(lk, [&] {
                return stop_ || failed_ || next_claim_ >= num_batches_ ||
                       next_claim_ < next_out_ + opt_.max_batches;
            });
            if (stop_ || failed_ || next_claim_ >= num_batches_) return;
            const std::size_t k = next_claim_++;
            note_claim();
            lk.unlock();
            slot s = build(k);
            lk.lock();
            if (s.error) failed_ = true; // later batches are never needed
            done_.emplace(k, std::move(s));
            ready_.notify_all();
        }
    }

    bool stopping() {
        std::lock_guard<std::mutex> lk(mu_);
        return stop_;
    }

    /// Builds batch k (any thread). Never throws: errors go into the slot, named.
    slot build(std::size_t k) {
        slot s;
        const std::size_t b = std::size_t(opt_.batch_size);
        const std::size_t j0 = k * b, j1 = std::min(jobs_.size(), j0 + b);
        const std::int64_t S = cfg_.chip_size;
        std::size_t j = j0;
        try {
            chip_batch out;
            out.index = k;
            out.images = at::empty({std::int64_t(j1 - j0), 3, S, S}, at::kFloat);
            out.targets.reserve(j1 - j0);
            float* data = out.images.data_ptr<float>();
            for (; j < j1; ++j) {
                if (threaded_ && stopping()) return s;
                const chip_job& job = jobs_[j];
                snip::require(job.image < ds_.images.size(), "chip job ", j, ": image index ",
                              job.image, " but the dataset has ", ds_.images.size(), " images");
                const auto img = cache_.get(job.image, [&] { return source_(job.image); });
                fill_chip(*img, cfg_, job,
                          chw_view{data + std::ptrdiff_t(j - j0) * 3 * S * S, S, S * S}, opt_.norm);
                out.targets.push_back(make_target(ds_, cfg_, job, classes_, opt_.assign));
            }
            s.batch = std::move(out);
        } catch (const std::exception& e) {
            s.error = std::make_exception_ptr(named_error(k, j, e.what()));
        } catch (...) {
            s.error = std::make_exception_ptr(named_error(k, j, "unknown exception"));
        }
        return s;
    }

    /// The error of chip j of batch k, naming the image file once.
    snip::error named_error(std::size_t k, std::size_t j, const std::string& what) const {
        std::string where = snip::concat("chip_loader: batch ", k, ", chip ", j);
        if (j < jobs_.size() && jobs_[j].image < ds_.images.size()) {
            const auto& im = ds_.images[jobs_[j].image];
            where += snip::concat(", image id ", im.id);
            if (what.find(im.file_name) == std::string::npos)
                where += snip::concat(" (", im.file_name, ")");
        }
        return snip::error(where + ": " + what);
    }

    const snip::dataset& ds_;
    snip::plan_config cfg_;
    std::vector<chip_job> jobs_;
    image_source source_;
    loader_options opt_;
    bool threaded_; ///< workers run (fixed before any starts)
    class_map classes_;
    image_cache cache_;
    std::size_t num_batches_ = 0;

    mutable std::mutex mu_;
    std::condition_variable space_; ///< a slot freed, stop or failure (workers wait)
    std::condition_variable ready_; ///< a batch finished (the consumer waits)
    std::map<std::size_t, slot> done_;
    std::size_t next_claim_ = 0; ///< next batch a worker will build
    std::size_t next_out_ = 0;   ///< next batch next() returns
    std::size_t peak_ = 0;
    bool stop_ = false;
    bool failed_ = false;
    std::exception_ptr error_;
    std::vector<std::thread> pool_; // last: started after everything above exists
};

} // namespace snip::train
