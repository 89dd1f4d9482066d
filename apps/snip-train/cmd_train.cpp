// snip-train rpn / train: the two training stages of SNIPER.
#include "train_cli.hpp"

#include <cstdio>
#include <string>
#include <vector>

namespace {

using namespace snip::apps;

std::vector<std::string> all_flags() {
    std::vector<std::string> f = cli::plan_flags;
    f.insert(f.end(), train_cli::model_flags.begin(), train_cli::model_flags.end());
    f.insert(f.end(), train_cli::train_flags.begin(), train_cli::train_flags.end());
    f.insert(f.end(), train_cli::dist_flags.begin(), train_cli::dist_flags.end());
    return f;
}

int run_training(const std::string& cmd, const std::vector<std::string>& argv, bool rpn_only) {
    const cli::args a(cmd, argv, all_flags(), train_cli::train_switches);
    // Ctrl-C / SIGTERM, from here on (also while loading and connecting): finish the step in
    // flight (the first, when it comes earlier), write a checkpoint, exit 130 / 143 (run.hpp).
    const snip::train::stop_signals signals;
    train_cli::set_threads(a);
    const torch::Device device = train_cli::device_from(a);
    const std::shared_ptr<snip::train::dist_group> dist = train_cli::dist_connect(a, device);
    const bool main_rank = !dist || dist->main(); // the others say nothing twice
    const snip::plan_config cfg = cli::config_from_args(a);
    const std::string ann = a.required("--annotations");
    const snip::dataset ds = cli::load_annotations(ann);
    snip::require(!ds.images.empty(), ann, ": no images");
    std::vector<snip::image_proposals> props;
    const std::string prop_path = a.get_or("--proposals", "");
    if (rpn_only)
        snip::require(prop_path.empty(), "rpn: the first stage trains on positive chips only; "
                                         "--proposals belongs to `snip-train train`");
    if (!prop_path.empty()) {
        props = snip::io::read_proposals(prop_path, ds);
        std::size_t n = 0;
        for (const auto& p : props) n += p.boxes.size();
        if (main_rank)
            std::fprintf(stderr, "loaded %s: %zu proposals (negative chips are mined from them)\n",
                         prop_path.c_str(), n);
    } else if (!rpn_only && main_rank) {
        std::fprintf(stderr, "note: no --proposals: training on positive chips only (SNIPER's "
                             "second stage mines negative chips from `snip-train proposals`)\n");
    }
    if (main_rank)
        for (const auto& w : snip::dataset_warnings(cfg, ds))
            std::fprintf(stderr, "warning: %s: %s\n", ann.c_str(), w.c_str());

    snip::train::train_options o = train_cli::train_options_from(a, rpn_only);
    o.description = "snip-train " + cmd;
    for (const auto& w : argv) o.description += " " + w;
    const snip::train::class_map classes(ds);
    snip::train::FasterRCNN net =
        train_cli::model_from(a, classes.num_classes(), o.resume || !main_rank);
    if (auto init = a.get("--init")) {
        snip::require(!o.resume, cmd, ": --init and --resume exclude each other");
        const snip::train::checkpoint_info info = snip::train::load_checkpoint(*init, net);
        train_cli::check_categories(info, classes, *init, ann);
        if (main_rank)
            std::fprintf(stderr, "initialised from %s (step %lld)\n", init->c_str(),
                         static_cast<long long>(info.position.step));
    }
    net->to(device);
    if (main_rank)
        std::fprintf(stderr,
                     "%s: %s on %s, %zu images, config %s (%zu scales, chip %d), batch %d%s, lr "
                     "%.4g on the sum of 16-chip group losses (%.4g on the batch's mean loss), %d epochs\n",
                     cmd.c_str(), snip::train::detector_identity(net->options()).c_str(),
                     device.str().c_str(), ds.images.size(), cfg.name.c_str(), cfg.scales.size(),
                     cfg.chip_size, o.batch_size,
                     dist ? (" (" + std::to_string(o.batch_size / dist->size()) + " per process)").c_str() : "",
                     o.base_lr, o.base_lr * o.batch_size / 16.0, o.epochs);
    const snip::train::train_result r =
        snip::train::train(net, ds, cfg, snip::train::files_in(ds, train_cli::images_dir(a)),
                      prop_path.empty() ? nullptr : &props, o, dist.get());
    const int code = r.stopped_by ? 128 + r.stopped_by : 0;
    if (!main_rank) return code;
    const double last = r.history.empty() ? 0.0 : r.history.back().total;
    std::printf("%s: %lld steps this run (%lld in all) in %.1f s, last loss %.4f, %s\n",
                cmd.c_str(), static_cast<long long>(r.steps_this_run),
                static_cast<long long>(r.steps), r.seconds, last,
                r.finished ? "finished" : "stopped early (continue with --resume)");
    std::printf("wrote %s/{checkpoint.pt, log.csv, loss.png}\n", o.out_dir.c_str());
    if (!r.skipped_images.empty()) {
        std::printf("skipped %zu bad image%s (--skip-bad-images):\n", r.skipped_images.size(),
                    r.skipped_images.size() == 1 ? "" : "s");
        for (const auto& s : r.skipped_images) std::printf("  %s\n", s.c_str());
    }
    if (r.stopped_by) {
        std::string again = "snip-train " + cmd;
        for (const auto& w : argv)
            if (w != "--overwrite") again += " " + w;
        if (!a.has("--resume")) again += " --resume";
        std::fprintf(stderr,
                     "%s: stopped by %s after step %lld (epoch %d, batch %lld); the checkpoint "
                     "is written. Continue with:\n  %s\n",
                     cmd.c_str(), snip::train::signal_name(r.stopped_by).c_str(),
                     static_cast<long long>(r.steps), r.position_epoch + 1,
                     static_cast<long long>(r.position_batch), again.c_str());
    }
    return code;
}

int cmd_rpn(const std::vector<std::string>& argv) { return run_training("rpn", argv, true); }
int cmd_train(const std::vector<std::string>& argv) { return run_training("train", argv, false); }

std::string usage(bool rpn) {
    std::string u = rpn ? "snip-train rpn: SNIPER's first stage: a short RPN-only training on the positive\n"
                          "chips; its proposals (`snip-train proposals`) mine the negative chips.\n\n"
                          "usage: snip-train rpn --annotations FILE --out DIR [options]\n\n"
                        : "snip-train train: SNIPER training on positive chips and, with --proposals,\n"
                          "negative chips mined from them; chips are re-planned every epoch with the seed.\n\n"
                          "usage: snip-train train --annotations FILE --out DIR [--proposals FILE] [options]\n\n";
    u += "chips (as snip-chips plan):\n";
    u += cli::plan_flags_help;
    u += "\nmodel:\n";
    u += train_cli::model_flags_help;
    u += "\ntraining:\n";
    u += train_cli::train_flags_help;
    u += "\ndistributed (batch B is the global batch; B / N chips per process):\n";
    u += train_cli::dist_flags_help;
    return u;
}

} // namespace

SNIP_COMMAND("rpn", "stage 1: short RPN-only training on positive chips", usage(true), cmd_rpn);
SNIP_COMMAND("train", "stage 2: train the detector on positive (+ negative) chips", usage(false),
             cmd_train);
