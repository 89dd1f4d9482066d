// data.cpp: chip jobs, targets, pixels and the chip loader (declared in snip/train/data.hpp).
#include <snip/train/data.hpp>

namespace snip::train {

std::vector<chip_job> make_chip_jobs(const std::vector<snip::image_chips_plan>& plans,
                                     const job_options& opt) {
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

class_map::class_map(const snip::dataset& ds) {
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

int class_map::operator()(int category_id) const {
    auto it = index_.find(category_id);
    snip::require(it != index_.end(), "class_map: category id ", category_id,
                  " is not among the dataset's ", ids_.size(), " categories");
    return it->second;
}

namespace {

/// Mask `s` (original px) in the frame of chip `job` (see chip_target::segments).
snip::mask::segmentation chip_segment(const snip::mask::segmentation& s, const chip_job& job,
                                      const chip_geometry& g) {
    snip::mask::segmentation out;
    const double f = job.chip.factor, x1 = job.chip.rect.x1, y1 = job.chip.rect.y1;
    if (s.is_polygons()) {
        out.polygons.reserve(s.polygons.size());
        for (const snip::mask::polygon& p : s.polygons) {
            snip::mask::polygon q = snip::mask::to_chip(p, f, x1, y1);
            out.polygons.push_back(job.flipped ? snip::mask::flip_x(q, double(g.width)) : std::move(q));
        }
    } else if (s.is_rle()) {
        const snip::box<double> rect{x1, y1, x1 + g.width, y1 + g.height};
        out.mask = snip::mask::crop_rle(s.mask, f, rect, g.height, g.width);
        if (job.flipped) { // mirror the columns: decode, swap, encode
            std::vector<std::uint8_t> px = snip::mask::decode(out.mask);
            for (int y = 0; y < g.height; ++y)
                std::reverse(px.begin() + std::ptrdiff_t(y) * g.width,
                             px.begin() + std::ptrdiff_t(y + 1) * g.width);
            out.mask = snip::mask::encode(px.data(), g.height, g.width);
        }
    }
    return out;
}

} // namespace

chip_target make_target(const snip::dataset& ds, const snip::plan_config& cfg, const chip_job& job,
                        const class_map& classes, const snip::assign_options& opt) {
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
    if (!im.segments.empty()) {
        snip::require(im.segments.size() == im.boxes.size(), "chip job: image id ", im.id,
                      " has ", im.segments.size(), " segmentations for ", im.boxes.size(),
                      " boxes");
        t.segments.reserve(gt.size());
        for (const snip::chip_gt& x : gt)
            t.segments.push_back(x.state == snip::gt_state::crowd
                                     ? snip::mask::segmentation{} // never a mask target
                                     : chip_segment(im.segments[std::size_t(x.index)], job, g));
    }
    t.job = job;
    t.width = g.width;
    t.height = g.height;
    snip::require(job.chip.scale >= 0 && std::size_t(job.chip.scale) < cfg.ranges.size(),
                  "chip job: chip of scale ", job.chip.scale, " but the plan has ",
                  cfg.ranges.size(), " valid ranges");
    const snip::valid_range& r = cfg.ranges[std::size_t(job.chip.scale)];
    t.range = {r.has_lo() ? r.lo * job.chip.factor : -1.0,
               r.has_hi() ? r.hi * job.chip.factor : -1.0};
    return t;
}

void fill_chip(const image& src, const snip::plan_config& cfg, const chip_job& job, chw_view dst,
               const normalisation& norm) {
    snip::require(!src.empty() && src.px.size() == std::size_t(src.w) * std::size_t(src.h) * 3,
                  "fill_chip: the source image is empty or its buffer does not hold ", src.w, " x ",
                  src.h, " RGB pixels");
    const int s = cfg.chip_size;
    snip::cut_chip(snip::image_view<const std::uint8_t>::interleaved(src.px.data(), src.w, src.h, 3),
                   cfg, job.chip, job.flipped,
                   snip::image_view<float>{dst.data, s, s, 3, dst.row_stride, 1, dst.plane_stride},
                   transform_of(norm));
}

image_source files_in(const snip::dataset& ds, std::string dir) {
    return [&ds, dir = std::move(dir)](std::size_t i) {
        const snip::image_record& rec = ds.images.at(i);
        const std::string path = (std::filesystem::path(dir) / rec.file_name).string();
        image img = decode_image(path);
        const bool w_ok = rec.width <= 0 || img.w == rec.width;
        const bool h_ok = rec.height <= 0 || img.h == rec.height;
        if (!w_ok || !h_ok)
            snip::fail(path, ": the image is ", img.w, " x ", img.h, " pixels but ",
                       ds.source.empty() ? std::string("the annotations") : ds.source,
                       " give image id ", rec.id, " width ", rec.width, " and height ", rec.height,
                       img.w == rec.height && img.h == rec.width
                           ? " (swapped: an EXIF-rotated photo? snip reads the stored pixels "
                             "and ignores EXIF orientation)"
                           : "",
                       ": its boxes would land on the wrong pixels; fix the annotation or the file");
        return img;
    };
}

void image_cache::evict(std::size_t keep) {
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

chip_loader::chip_loader(const snip::dataset& ds, snip::plan_config cfg, std::vector<chip_job> jobs,
                         image_source source, loader_options opt)
    : ds_(ds), cfg_(std::move(cfg)), jobs_(std::move(jobs)), source_(std::move(source)), opt_(opt),
      threaded_(opt.workers > 0), classes_(ds), cache_(opt.cache_bytes) {
    snip::require(opt_.batch_size > 0, "chip_loader: batch size must be > 0, got ",
                  opt_.batch_size);
    snip::require(opt_.max_batches > 0, "chip_loader: max_batches (Q) must be > 0, got ",
                  opt_.max_batches);
    snip::require(bool(source_), "chip_loader: no image source");
    snip::require(cfg_.chip_size > 0, "chip_loader: chip size must be > 0, got ", cfg_.chip_size);
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

std::optional<chip_batch> chip_loader::next() {
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

std::size_t chip_loader::num_chips() const {
    return std::min(jobs_.size(), num_batches_ * std::size_t(opt_.batch_size));
}

std::size_t chip_loader::in_flight() const {
    std::lock_guard<std::mutex> lk(mu_);
    return next_claim_ - next_out_;
}

std::size_t chip_loader::peak_in_flight() const {
    std::lock_guard<std::mutex> lk(mu_);
    return peak_;
}

void chip_loader::shutdown() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stop_ = true;
    }
    space_.notify_all();
    for (auto& t : pool_)
        t.join();
    pool_.clear();
}

std::optional<chip_batch> chip_loader::hand_out(std::size_t k, slot s) {
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

void chip_loader::work() {
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

bool chip_loader::stopping() {
    std::lock_guard<std::mutex> lk(mu_);
    return stop_;
}

chip_loader::slot chip_loader::build(std::size_t k) {
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
        std::int64_t n = 0; // chips in the batch (fewer than j1 - j0 when images are skipped)
        for (; j < j1; ++j) {
            if (threaded_ && stopping()) return s;
            const chip_job& job = jobs_[j];
            snip::require(job.image < ds_.images.size(), "chip job ", j, ": image index ",
                          job.image, " but the dataset has ", ds_.images.size(), " images");
            std::shared_ptr<const image> img;
            try {
                img = cache_.get(job.image, [&] { return source_(job.image); });
            } catch (const std::exception& e) {
                if (!opt_.skip_bad_images) throw;
                const std::string& file = ds_.images[job.image].file_name;
                std::string why = e.what();
                if (why.find(file) == std::string::npos) why = file + ": " + why;
                if (std::find(out.skipped.begin(), out.skipped.end(), why) == out.skipped.end())
                    out.skipped.push_back(why);
                continue;
            }
            fill_chip(*img, cfg_, job, chw_view{data + n * 3 * S * S, S, S * S}, opt_.norm);
            out.targets.push_back(make_target(ds_, cfg_, job, classes_, opt_.assign));
            ++n;
        }
        if (n < std::int64_t(j1 - j0)) out.images = out.images.slice(0, 0, n);
        s.batch = std::move(out);
    } catch (const std::exception& e) {
        std::string what = e.what();
        if (dynamic_cast<const std::bad_alloc*>(&e) || what.find("not enough memory") != std::string::npos)
            what = "out of memory building a batch of " + std::to_string(j1 - j0) + " chips (" +
                   what.substr(0, std::min<std::size_t>(what.find('\n'), 300)) + "); lower --batch";
        s.error = std::make_exception_ptr(named_error(k, j, what));
    } catch (...) {
        s.error = std::make_exception_ptr(named_error(k, j, "unknown exception"));
    }
    return s;
}

snip::error chip_loader::named_error(std::size_t k, std::size_t j, const std::string& what) const {
    std::string where = snip::concat("chip_loader: batch ", k, ", chip ", j);
    if (j < jobs_.size() && jobs_[j].image < ds_.images.size()) {
        const auto& im = ds_.images[jobs_[j].image];
        where += snip::concat(", image id ", im.id);
        if (what.find(im.file_name) == std::string::npos)
            where += snip::concat(" (", im.file_name, ")");
    }
    return snip::error(where + ": " + what);
}

std::size_t image_cache::hits() const {
    std::lock_guard<std::mutex> lk(mu_);
    return hits_;
}

std::size_t image_cache::misses() const {
    std::lock_guard<std::mutex> lk(mu_);
    return misses_;
}

std::size_t image_cache::bytes() const {
    std::lock_guard<std::mutex> lk(mu_);
    return bytes_;
}

} // namespace snip::train
