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

#include <snip/mask/polygon.hpp>
#include <snip/mask/rle.hpp>
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
std::vector<chip_job> make_chip_jobs(const std::vector<snip::image_chips_plan>& plans,
                                     const job_options& opt = {});

// ---------------------------------------------------------------------------------------
// One chip: where its pixels come from, and its ground truth

/// Where a chip's pixels come from and where they go: the library's (sniper/crop.hpp).
using snip::chip_crop;
using snip::chip_geometry;

/// @brief Contiguous class indices for a detector: COCO category ids (sparse, 1..90)
/// become 1..K in increasing id order; 0 is background. Without categories in the
/// dataset, the ids that occur on boxes are used.
class class_map {
public:
    class_map() = default;
    explicit class_map(const snip::dataset& ds);
    /// Number of object classes K (background not counted).
    int num_classes() const { return int(ids_.size()); }
    /// The contiguous index (1..K) of a category id. @throws snip::error for an unknown id.
    int operator()(int category_id) const;
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
    /// The instance mask of each box in CHIP pixels (continuous convention, x mirrored as
    /// x' = width - x when flipped): polygons scaled and shifted into the chip and NOT
    /// clipped (the original's crop_polys, SNIPER lib/data_utils/mask_utils.py), an RLE cut
    /// out of the original image's mask at the chip's content size (snip::mask::crop_rle).
    /// Empty when the dataset has no masks; else parallel to `boxes`, empty() entries for
    /// boxes without one.
    std::vector<snip::mask::segmentation> segments;
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
chip_target make_target(const snip::dataset& ds, const snip::plan_config& cfg,
                        const chip_job& job, const class_map& classes,
                        const snip::assign_options& opt = {});

/// @brief Writes the image of `job` into `dst` (chip_size x chip_size planes): the
/// content resampled at the top-left, zeros elsewhere.
void fill_chip(const image& src, const snip::plan_config& cfg, const chip_job& job,
               chw_view dst, const normalisation& norm = {});

// ---------------------------------------------------------------------------------------
// Decoded images: where they come from, and a small cache

/// @brief Gives the decoded image of dataset image `index`. Called from worker threads
/// concurrently: it must be thread-safe. Errors should name the file.
using image_source = std::function<image(std::size_t index)>;

/// @brief Images read from `dir / file_name` (dataset::images[i].file_name). The
/// dataset must outlive the source. An image whose decoded size differs from the
/// annotation's width and height (when given, > 0) is an error naming the file and both
/// sizes: its boxes would not be where the annotation says. stb_image decodes the stored
/// pixels and ignores an EXIF orientation, so a camera JPEG annotated in its rotated
/// (displayed) size is refused the same way, with both sizes, rather than trained on
/// rotated pixels.
image_source files_in(const snip::dataset& ds, std::string dir);

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

    std::size_t hits() const;
    std::size_t misses() const;
    /// Bytes of the decoded images held now (<= max_bytes, or one image if larger).
    std::size_t bytes() const;

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
    void evict(std::size_t keep);

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
    /// Under loader_options::skip_bad_images: "file: reason" of each image whose chips were
    /// left out of this batch (so it may hold fewer than batch_size chips, or none).
    std::vector<std::string> skipped;
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
    /// A chip whose image fails to load (missing, corrupt, another size than the
    /// annotation's) is left out of its batch and named in chip_batch::skipped, instead of
    /// failing the batch.
    bool skip_bad_images = false;
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
                image_source source, loader_options opt = {});

    chip_loader(const chip_loader&) = delete;
    chip_loader& operator=(const chip_loader&) = delete;

    ~chip_loader() { shutdown(); }

    /// The next batch in order, or nullopt after the last. Blocks until it is ready.
    /// @throws snip::error naming the image file when building this batch failed (and
    /// again on every later call).
    std::optional<chip_batch> next();

    std::size_t num_batches() const { return num_batches_; }
    std::size_t num_chips() const;
    const std::vector<chip_job>& jobs() const { return jobs_; }
    const class_map& classes() const { return classes_; }
    const image_cache& cache() const { return cache_; }
    /// Batches alive in the pipeline now, and the most there ever were (<= max_batches).
    std::size_t in_flight() const;
    std::size_t peak_in_flight() const;

private:
    struct slot {
        std::optional<chip_batch> batch; ///< empty when abandoned or failed
        std::exception_ptr error;
    };

    void shutdown();

    void note_claim() { peak_ = std::max(peak_, next_claim_ - next_out_); }

    std::optional<chip_batch> hand_out(std::size_t k, slot s);

    void work();

    bool stopping();

    /// Builds batch k (any thread). Never throws: errors go into the slot, named.
    slot build(std::size_t k);

    /// The error of chip j of batch k, naming the image file once.
    snip::error named_error(std::size_t k, std::size_t j, const std::string& what) const;

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
