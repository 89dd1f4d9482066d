// loop.cpp: the training loop (declared in snip/train/loop.hpp).
#include <snip/train/loop.hpp>

#include <snip/core/random.hpp>
#include <snip/io/chips_json.hpp>
#include <snip/train/run.hpp>
#include <snip/sniper/dataset_plan.hpp>

#include <ATen/CPUGeneratorImpl.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

namespace snip::train {

std::string train_setup(const train_options& o, const snip::plan_config& cfg,
                        const snip::dataset& ds, bool with_proposals) {
    std::ostringstream s;
    s << "seed " << o.seed << " batch " << o.batch_size << " epochs " << o.epochs << " rpn_only "
      << o.rpn_only << " amp " << o.amp << " flip " << int(o.flip) << " negatives "
      << (o.negatives && with_proposals) << " images " << ds.images.size() << " boxes "
      << ds.num_boxes();
    // Every field of the plan config but its name: scales, ranges, chip, stride, rules.
    nlohmann::json c = snip::io::config_to_json(cfg);
    c.erase("name");
    s << " config " << c.dump();
    return s.str();
}

namespace detail {

void broadcast_train_state(dist_group& g, FasterRCNN& net, torch::optim::SGD& sgd,
                           train_position& pos, loss_scaler& scaler) {
    std::vector<torch::Tensor> state;
    for (const auto& p : net->parameters())
        state.push_back(p);
    for (const auto& b : net->buffers())
        state.push_back(b);
    g.broadcast(state);
    // Momentum buffers: rank 0 says which parameters have one; the others make them.
    std::vector<torch::Tensor> params;
    for (auto& group : sgd.param_groups())
        for (auto& p : group.params())
            params.push_back(p);
    auto& st = sgd.state();
    auto key = [](const torch::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); };
    torch::Tensor has = torch::zeros({std::int64_t(params.size())}, torch::kLong);
    for (std::size_t i = 0; i < params.size(); ++i)
        if (st.count(key(params[i]))) {
            auto& ps = static_cast<torch::optim::SGDParamState&>(*st.at(key(params[i])));
            if (ps.momentum_buffer().defined()) has[std::int64_t(i)] = 1;
        }
    g.broadcast({has});
    std::vector<torch::Tensor> momentum;
    for (std::size_t i = 0; i < params.size(); ++i) {
        const std::string k = key(params[i]);
        if (has[std::int64_t(i)].item<std::int64_t>() == 0) {
            st.erase(k); // rank 0 has none: neither may any other rank
            continue;
        }
        if (!st.count(k)) st[k] = std::make_unique<torch::optim::SGDParamState>();
        auto& ps = static_cast<torch::optim::SGDParamState&>(*st.at(k));
        if (!ps.momentum_buffer().defined())
            ps.momentum_buffer(torch::zeros_like(params[i], torch::MemoryFormat::Preserve));
        momentum.push_back(ps.momentum_buffer());
    }
    g.broadcast(momentum);
    torch::Tensor where = torch::tensor(
        {std::int64_t(pos.epoch), pos.batch, pos.step, scaler.good, scaler.skipped}, torch::kLong);
    torch::Tensor scale = torch::tensor({scaler.scale}, torch::kDouble);
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    torch::Tensor rng = gen.get_state();
    g.broadcast({where, scale, rng});
    pos.epoch = int(where[0].item<std::int64_t>());
    pos.batch = where[1].item<std::int64_t>();
    pos.step = where[2].item<std::int64_t>();
    scaler.good = where[3].item<std::int64_t>();
    scaler.skipped = where[4].item<std::int64_t>();
    scaler.scale = scale[0].item<double>();
    gen.set_state(rng);
}

} // namespace detail

namespace {

train_result train_run(FasterRCNN& net, const snip::dataset& ds, const snip::plan_config& cfg,
                       const image_source& source,
                       const std::vector<snip::image_proposals>* proposals,
                       const train_options& o, dist_group* dist);

} // namespace

train_result train(FasterRCNN& net, const snip::dataset& ds, const snip::plan_config& cfg,
                   const image_source& source, const std::vector<snip::image_proposals>* proposals,
                   const train_options& o, dist_group* dist) {
    try {
        return train_run(net, ds, cfg, source, proposals, o, dist);
    } catch (const std::exception& e) {
        // The other ranks, stuck in their next collective, will name this rank and message.
        if (dist) dist->report_failure(e.what());
        throw;
    }
}

namespace {

train_result train_run(FasterRCNN& net, const snip::dataset& ds, const snip::plan_config& cfg,
                       const image_source& source,
                       const std::vector<snip::image_proposals>* proposals,
                       const train_options& o, dist_group* dist) {
    o.validate();
    const int world = dist ? dist->size() : 1;
    const int rank = dist ? dist->rank() : 0;
    const bool writer = rank == 0; // rank 0 alone reads checkpoints and writes outputs
    snip::require(o.batch_size % world == 0, "train: a batch of ", o.batch_size,
                  " chips does not split over ", world,
                  " processes: use a batch that the world size divides");
    cfg.validate("train: plan config");
    {
        // The loader's pixels alone: Q batches in flight plus the one in use, float32 CHW.
        const double chip_bytes = 3.0 * 4.0 * double(cfg.chip_size) * double(cfg.chip_size);
        const double need = chip_bytes * double(o.batch_size / world) * double(o.prefetch + 1);
        const double have = physical_memory_bytes();
        snip::require(have == 0 || need < have, "train: a batch of ", o.batch_size / world,
                      " chips of ", cfg.chip_size, " x ", cfg.chip_size, " px per process needs ",
                      need / double(1 << 30), " GiB for the loader's pixels alone (", o.prefetch + 1,
                      " batches in flight), more than this machine's ", have / double(1 << 30),
                      " GiB: lower --batch");
    }
    snip::require(!ds.images.empty(), "train: the dataset ", ds.source, " has no images");
    const class_map classes(ds);
    snip::require(classes.num_classes() == net->options().num_classes, "train: the dataset ",
                  ds.source, " has ", classes.num_classes(), " categories, the model ",
                  net->options().num_classes, " classes");
    std::vector<int> category_ids;
    for (int k = 1; k <= classes.num_classes(); ++k)
        category_ids.push_back(classes.category(k));

    const auto params = net->trainable_parameters();
    snip::require(!params.empty(), "train: the model has no trainable parameter");
    // One parameter group per learning-rate multiplier (the deformable head's offset FC
    // learns at 0.01 x the rate, as the original's lr_mult); the schedule sets each group's
    // rate to lr x its multiplier.
    std::vector<double> lr_mults;
    std::vector<torch::optim::OptimizerParamGroup> groups;
    for (auto& [ps, mult] : net->parameter_groups()) {
        if (ps.empty()) continue;
        lr_mults.push_back(mult);
        groups.emplace_back(ps, std::make_unique<torch::optim::SGDOptions>(
                                    torch::optim::SGDOptions(o.lr_at(0, 0.0) * mult)
                                        .momentum(o.momentum)
                                        .weight_decay(o.weight_decay)));
    }
    torch::optim::SGD sgd(std::move(groups), torch::optim::SGDOptions(o.lr_at(0, 0.0))
                                                 .momentum(o.momentum)
                                                 .weight_decay(o.weight_decay));
    const std::string setup = train_setup(o, cfg, ds, proposals != nullptr);
    const std::string ckpt = o.out_dir.empty()
                                 ? std::string()
                                 : (std::filesystem::path(o.out_dir) / "checkpoint.pt").string();
    // One run per folder (run.hpp); an existing checkpoint is kept unless told otherwise.
    std::optional<run_lock> lock;
    auto open_out = [&] {
        if (o.out_dir.empty() || !writer) return;
        lock.emplace(o.out_dir, o.description);
        if (!o.quiet)
            for (const auto& f : lock->removed())
                std::fprintf(stderr, "removed %s (left by an interrupted write)\n", f.c_str());
        if (!o.resume && !o.overwrite && std::filesystem::exists(ckpt))
            snip::fail("train: ", ckpt, " exists (an earlier run's checkpoint): continue that run "
                       "with --resume, replace it with --overwrite, or choose another --out");
    };
    if (dist)
        dist->agree("open the output folder " + o.out_dir, open_out);
    else
        open_out();
    if (dist) {
        dist->require_same("the model", detector_identity(net->options()));
        dist->require_same("the training setup", setup);
    }

    train_result res;
    train_position pos;
    loss_scaler scaler_state;
    if (o.resume) {
        auto resume = [&] {
            if (!writer) return;
            const checkpoint_info info =
                load_checkpoint(ckpt, net, &sgd, /*restore_rng=*/true, &setup);
            pos = info.position;
            res.history = info.history;
            scaler_state = info.scaler;
            if (!o.quiet)
                std::fprintf(stderr, "resuming %s at epoch %d, batch %lld (step %lld)\n",
                             ckpt.c_str(), pos.epoch + 1, static_cast<long long>(pos.batch),
                             static_cast<long long>(pos.step));
        };
        if (dist)
            dist->agree("resume from " + ckpt, resume);
        else
            resume();
    }
    if (dist) detail::broadcast_train_state(*dist, net, sgd, pos, scaler_state);
    std::unique_ptr<grad_sync> sync;
    if (dist) sync = std::make_unique<grad_sync>(*dist, params, dist->options().bucket_mb);
    batch_share share;
    share.world = world;
    share.first_chip = std::size_t(rank) * std::size_t(o.batch_size / world);
    if (dist)
        share.sum_counts = [dist](std::array<double, 3>& c) {
            const torch::Tensor s =
                dist->all_sum(torch::tensor({c[0], c[1], c[2]}, torch::kDouble));
            for (std::size_t k = 0; k < c.size(); ++k)
                c[k] = s[std::int64_t(k)].item<double>();
        };

    const torch::Device device = params.front().device();
    snip::require(!o.amp || device.is_cuda(), "train: mixed precision (--amp) runs on CUDA only; ",
                  "the model is on ", device.str());
    loss_scaler scaler = scaler_state;
    const resnet_options& bo = net->options().backbone;
    const std::string title = std::string(o.rpn_only ? "RPN stage" : "training") + ": " +
                              net->options().model_name() + " network, ResNet-" +
                              std::to_string(bo.depth) +
                              (bo.width != 64 ? " width " + std::to_string(bo.width) : "") +
                              ", batch " + std::to_string(o.batch_size);
    // log.csv gets the new rows appended (rewritten whole once after a resume, and after a
    // failed append). A failed log or picture write is a warning, not the end of the run; a
    // failed checkpoint ends it (the previous checkpoint stays intact: save_checkpoint writes
    // a temporary file and renames it).
    const std::string csv =
        o.out_dir.empty() ? std::string() : (std::filesystem::path(o.out_dir) / "log.csv").string();
    std::size_t csv_rows = 0;
    bool csv_whole = true; // the next write rewrites the file
    std::set<std::string> warned;
    auto warn_once = [&](const std::string& kind, const std::string& what) {
        if (warned.insert(kind).second)
            std::fprintf(stderr, "\nwarning: %s (training goes on; later failures of the same "
                                 "kind are not repeated)\n", what.c_str());
    };
    auto write_outputs = [&](bool with_checkpoint) {
        if (o.out_dir.empty() || !writer) return;
        if (with_checkpoint)
            save_checkpoint(ckpt, net, &sgd, pos, setup, res.history, category_ids, scaler);
        try {
            if (csv_whole)
                write_log_csv(csv, res.history);
            else
                append_log_csv(csv, res.history, csv_rows);
            csv_rows = res.history.size();
            csv_whole = false;
        } catch (const std::exception& e) {
            csv_whole = true;
            warn_once("log", e.what());
        }
        try {
            if (o.on_log) o.on_log(res.history, title);
        } catch (const std::exception& e) {
            warn_once("picture", e.what());
        }
    };

    net->train();
    train_progress progress(o.quiet || !writer);
    const auto t_run = std::chrono::steady_clock::now();
    log_row ema;
    bool ema_set = false;
    bool stopped = false;
    while (pos.epoch < o.epochs && !stopped) {
        snip::dataset_plan_options po;
        po.seed = o.seed;
        po.epoch = pos.epoch;
        po.threads = o.plan_threads;
        const auto plans = snip::plan_dataset(cfg, ds, proposals, po);
        job_options jo;
        jo.seed = o.seed;
        jo.epoch = pos.epoch;
        jo.flip = o.flip;
        jo.negatives = o.negatives;
        const std::vector<chip_job> all_jobs = make_chip_jobs(plans, jo);
        const std::size_t B = std::size_t(o.batch_size);
        const auto batches = std::int64_t((all_jobs.size() + B - 1) / B);
        if (batches == 0) {
            // why: count what the planner dropped, so the message points at the cause
            std::size_t boxes = 0, crowd = 0, outside = 0, nowhere = 0;
            for (const auto& im : ds.images) {
                boxes += im.boxes.size();
                for (auto c : im.crowd) crowd += c != 0;
            }
            for (const auto& p : plans) {
                outside += p.plan.outside.size();
                nowhere += p.plan.valid_nowhere.size();
            }
            snip::fail("train: ", ds.source.empty() ? std::string("the dataset") : ds.source,
                       ": epoch ", pos.epoch + 1, " has no chip: ", ds.images.size(),
                       " images with ", boxes, " boxes, of which ", crowd, " crowd (never a chip), ",
                       outside, " outside their image and ", nowhere,
                       " valid at no scale (outside every valid range, too long for the chip at "
                       "their scale, or too thin for the finest), and no negative chip",
                       proposals ? " from the proposals" : " (no proposals given)",
                       ": check the boxes against the config's scales and ranges");
        }
        snip::require(pos.batch < batches, "train: resuming at batch ", pos.batch, " of epoch ",
                      pos.epoch + 1, ", which has ", batches, " batches");
        // This rank's chips of every global batch from the next one (a resumed epoch starts
        // at its next batch); the last batch is filled up with the epoch's first chips.
        std::vector<chip_job> jobs;
        for (std::size_t p : shard_positions(all_jobs.size(), B, world, rank, pos.batch))
            jobs.push_back(all_jobs[p % all_jobs.size()]);
        loader_options lo;
        lo.batch_size = o.batch_size / world;
        lo.workers = o.workers;
        lo.max_batches = o.prefetch;
        lo.norm = o.norm;
        lo.assign = o.assign;
        lo.skip_bad_images = o.skip_bad_images;
        chip_loader loader(ds, cfg, std::move(jobs), source, lo);
        const auto t_epoch = std::chrono::steady_clock::now();
        std::size_t chips_epoch = 0;
        while (auto b = loader.next()) {
            for (const std::string& why : b->skipped)
                if (std::find(res.skipped_images.begin(), res.skipped_images.end(), why) ==
                    res.skipped_images.end()) {
                    res.skipped_images.push_back(why);
                    if (writer) std::fprintf(stderr, "\nskipped a bad image: %s\n", why.c_str());
                }
            if (b->targets.empty()) {
                // Every chip of this share came from bad images: nothing to train on.
                snip::require(!dist, "train: rank ", rank, ": every chip of its share of batch ",
                              pos.batch, " (epoch ", pos.epoch + 1,
                              ") is from a skipped image; a distributed step needs chips on "
                              "every rank");
                ++pos.batch;
                if (pos.batch >= batches) {
                    ++pos.epoch;
                    pos.batch = 0;
                    write_outputs(true);
                    break;
                }
                continue;
            }
            const double epoch_pos = pos.epoch + double(pos.batch) / double(batches);
            const double lr = o.lr_at(pos.step, epoch_pos);
            for (std::size_t gi = 0; gi < sgd.param_groups().size(); ++gi)
                static_cast<torch::optim::SGDOptions&>(sgd.param_groups()[gi].options())
                    .lr(lr * lr_mults[gi]);
            sgd.zero_grad();
            detector_losses l;
            if (sync) sync->before_forward();
            const std::string step_name = snip::concat(
                "train: step ", pos.step, " (", b->targets.size(), " chips of ", cfg.chip_size,
                " x ", cfg.chip_size, " on ", device.str(), ")");
            const char* smaller = "lower --batch (or --workers) or use a smaller model";
            out_of_memory_guard(step_name, smaller, [&] {
                detail::autocast_scope amp(o.amp);
                l = net->forward_train(b->images.to(device), b->targets,
                                       snip::mix(o.seed, std::uint64_t(pos.step)), o.rpn_only,
                                       share);
            });
            const torch::Tensor total = l.total();
            // The losses of the global batch: each rank holds its share times W.
            std::array<double, 5> parts{l.rpn_cls.item<double>(), l.rpn_box.item<double>(),
                                        l.rcnn_cls.item<double>(), l.rcnn_box.item<double>(),
                                        l.rcnn_mask.defined() ? l.rcnn_mask.item<double>() : 0.0};
            // A stop request (SIGINT / SIGTERM) on any rank stops every rank after this step:
            // it travels with the step's loss reduction.
            int stop_signal = stop_requested();
            if (dist) {
                const torch::Tensor s = dist->all_sum(torch::tensor(
                    {parts[0], parts[1], parts[2], parts[3], parts[4], stop_signal ? 1.0 : 0.0,
                     double(stop_signal)},
                    torch::kDouble));
                for (std::size_t k = 0; k < parts.size(); ++k)
                    parts[k] = s[std::int64_t(k)].item<double>() / world;
                const double stopping = s[5].item<double>();
                if (!stop_signal && stopping > 0)
                    stop_signal = int(std::lround(s[6].item<double>() / stopping));
            }
            const double tv =
                dist ? parts[0] + parts[1] + parts[2] + parts[3] + parts[4] : total.item<double>();
            snip::require(std::isfinite(tv), "train: the loss is ", tv, " at step ", pos.step,
                          " (epoch ", pos.epoch + 1, ", batch ", pos.batch,
                          "): lower the learning rate or enable gradient clipping");
            bool finite = true;
            const torch::Tensor to_backward = o.amp ? total * scaler.scale : total;
            out_of_memory_guard(step_name, smaller, [&] {
                if (sync)
                    sync->backward(to_backward); // gradients averaged over the ranks
                else
                    to_backward.backward();
            });
            if (o.amp) {
                finite = scaler.unscale(params);
                scaler.update(finite);
            }
            if (finite) { // a mixed-precision step with an overflowed gradient is skipped
                if (o.clip_grad_norm > 0)
                    torch::nn::utils::clip_grad_norm_(params, o.clip_grad_norm);
                sgd.step();
            }

            chips_epoch += b->targets.size() * std::size_t(world);
            const double secs =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t_epoch).count();
            log_row r;
            r.step = pos.step;
            r.epoch = epoch_pos;
            r.lr = lr;
            r.rpn_cls = parts[0];
            r.rpn_box = parts[1];
            r.rcnn_cls = parts[2];
            r.rcnn_box = parts[3];
            r.rcnn_mask = parts[4];
            r.total = tv;
            r.chips_per_s = secs > 0 ? double(chips_epoch) / secs : 0.0;
            res.history.push_back(r);
            if (!ema_set) ema = r, ema_set = true;
            auto upd = [](double& acc, double v) { acc = 0.9 * acc + 0.1 * v; };
            upd(ema.total, r.total), upd(ema.rpn_cls, r.rpn_cls), upd(ema.rpn_box, r.rpn_box);
            upd(ema.rcnn_cls, r.rcnn_cls), upd(ema.rcnn_box, r.rcnn_box);
            upd(ema.rcnn_mask, r.rcnn_mask);
            ema.lr = lr;

            ++pos.step;
            ++pos.batch;
            ++res.steps_this_run;
            const bool epoch_end = pos.batch >= batches;
            const double chips_left =
                double(batches - pos.batch) * double(B) +
                double(o.epochs - pos.epoch - 1) * double(batches) * double(B);
            progress(pos.epoch, o.epochs, std::size_t(pos.batch), std::size_t(batches), pos.step,
                     ema, r.chips_per_s, r.chips_per_s > 0 ? chips_left / r.chips_per_s : -1.0,
                     epoch_end);
            if (stop_signal == 0 && !dist) stop_signal = stop_requested();
            if (stop_signal != 0) res.stopped_by = stop_signal;
            stopped = (o.max_steps > 0 && res.steps_this_run >= o.max_steps) || stop_signal != 0;
            if (epoch_end) {
                ++pos.epoch; // the checkpoint points at the start of the next epoch
                pos.batch = 0;
                write_outputs(true);
                break;
            }
            if ((o.checkpoint_every > 0 && pos.step % o.checkpoint_every == 0) || stopped)
                write_outputs(true);
            else if (pos.step % o.log_every == 0)
                write_outputs(false);
            if (stopped) break;
        }
    }
    if (dist) dist->barrier(); // the outputs of rank 0 are written when any rank returns
    res.steps = pos.step;
    res.position_epoch = pos.epoch;
    res.position_batch = pos.batch;
    res.finished = pos.epoch >= o.epochs;
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_run).count();
    return res;
}

} // namespace

} // namespace snip::train
