// checkpoint.cpp: checkpoints: the identity, the durable write, save and load (declared in
// snip/train/checkpoint.hpp).
#include <snip/train/checkpoint.hpp>

#include <snip/io/coco.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <exception>
#include <filesystem>
#include <sstream>

namespace snip::train {

std::string detector_identity(const detector_options& o) {
    std::ostringstream s;
    s << "resnet" << o.backbone.depth << " width " << o.backbone.width << " dilate_res5 "
      << o.backbone.dilate_res5 << " dilate_first " << o.backbone.dilate_first_res5_block
      << " frozen " << o.backbone.frozen_stages << " train_bn " << o.backbone.train_bn
      << " classes " << o.num_classes << " anchors " << o.anchors.templates().size() << " stride "
      << o.anchors.stride << " rpn " << o.rpn_channels << " head " << o.head_channels << " fc "
      << o.fc_channels << " pool " << o.pool_size;
    // The sniper network's parts, written only when on, so that an identity written before
    // they existed (the plain network's) reads back as that network.
    if (o.backbone.deformable_res5_groups > 0) s << " deform_res5 " << o.backbone.deformable_res5_groups;
    if (o.rpn_on_concat) s << " rpn_concat 1";
    if (o.head_pooling == roi_pooling::deformable)
        s << " deform_pool " << o.deform_samples << " trans_std " << o.deform_trans_std;
    if (o.masks)
        s << " masks " << o.mask_channels << " mask_pool " << o.mask_pool << " mask_convs "
          << o.mask_convs;
    return s.str();
}

namespace detail {

void write_durably(const std::string& path, const std::string& bytes) {
    const std::string tmp = path + ".tmp";
    auto reason = [](int e) { return std::error_code(e, std::generic_category()).message(); };
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        const int e = errno;
        snip::fail(path, ": cannot open ", tmp, " for writing (", reason(e), ")");
    }
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n <= 0) {
            const int e = n < 0 ? errno : ENOSPC;
            ::close(fd);
            ::unlink(tmp.c_str());
            snip::fail(path, ": writing ", tmp, " failed after ", done, " of ", bytes.size(),
                       " bytes (", reason(e), "); the previous ", path, " is intact");
        }
        done += std::size_t(n);
    }
    const bool synced = ::fsync(fd) == 0;
    const int sync_errno = errno;
    const bool closed = ::close(fd) == 0;
    if (!synced || !closed) {
        const int e = !synced ? sync_errno : errno;
        ::unlink(tmp.c_str());
        snip::fail(path, ": flushing ", tmp, " to disk failed (", reason(e), "); the previous ",
                   path, " is intact");
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int e = errno;
        ::unlink(tmp.c_str());
        snip::fail(path, ": cannot rename ", tmp, " onto it (", reason(e), ")");
    }
    const std::string dir = std::filesystem::path(path).parent_path().string();
    const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd); // best effort: the rename reaches the disk
        ::close(dfd);
    }
}

torch::Tensor history_tensor(const std::vector<log_row>& h) {
    torch::Tensor t = torch::empty({std::int64_t(h.size()), 10}, torch::kDouble);
    double* p = t.data_ptr<double>();
    for (const log_row& r : h) {
        const double v[10] = {double(r.step), r.epoch,    r.lr,    r.rpn_cls,     r.rpn_box,
                              r.rcnn_cls,     r.rcnn_box, r.total, r.chips_per_s, r.rcnn_mask};
        p = std::copy(v, v + 10, p);
    }
    return t;
}

std::vector<log_row> history_rows(const torch::Tensor& t, const std::string& path) {
    snip::require(t.dim() == 2 && t.size(1) == 10 && t.scalar_type() == torch::kDouble, path,
                  ": snip_train.history is ", c10::toString(t.scalar_type()), " ", t.sizes(),
                  ", must be Double [n, 10] (the loss history)");
    const torch::Tensor c = t.contiguous();
    const double* p = c.data_ptr<double>();
    std::vector<log_row> out(std::size_t(c.size(0)));
    for (log_row& r : out) {
        r.step = std::int64_t(p[0]);
        r.epoch = p[1], r.lr = p[2], r.rpn_cls = p[3], r.rpn_box = p[4], r.rcnn_cls = p[5];
        r.rcnn_box = p[6], r.total = p[7], r.chips_per_s = p[8];
        r.rcnn_mask = p[9]; // 0 in checkpoints written before the mask branch
        p += 10;
    }
    return out;
}

std::string first_line(const char* what) {
    const std::string s(what ? what : "");
    return s.substr(0, std::min<std::size_t>(s.find('\n'), 200));
}

c10::IValue read_value(torch::serialize::InputArchive& ar, const std::string& key,
                       const std::string& path) {
    c10::IValue v;
    snip::require(ar.try_read(key, v), path, ": not a snip-train checkpoint (no '", key, "')");
    return v;
}

void open_checkpoint(torch::serialize::InputArchive& ar, const std::string& path) {
    snip::require(std::filesystem::is_regular_file(path), path, ": no such checkpoint file");
    try {
        ar.load_from(path);
    } catch (const std::exception& e) {
        snip::fail(path, ": cannot read the checkpoint (truncated or not a LibTorch archive): ",
                   first_line(e.what()));
    }
}

} // namespace detail

void save_checkpoint(const std::string& path, FasterRCNN& net, torch::optim::SGD* sgd,
                     const train_position& pos, const std::string& setup,
                     const std::vector<log_row>& history, const std::vector<int>& category_ids,
                     const loss_scaler& scaler) {
    torch::serialize::OutputArchive ar;
    ar.write("snip_train.format", c10::IValue(std::int64_t(1)));
    ar.write("snip_train.model", c10::IValue(detector_identity(net->options())));
    ar.write("snip_train.setup", c10::IValue(setup));
    ar.write("snip_train.epoch", c10::IValue(std::int64_t(pos.epoch)));
    ar.write("snip_train.batch", c10::IValue(pos.batch));
    ar.write("snip_train.step", c10::IValue(pos.step));
    ar.write("snip_train.categories",
             c10::IValue(std::vector<std::int64_t>(category_ids.begin(), category_ids.end())));
    ar.write("snip_train.history", detail::history_tensor(history), /*is_buffer=*/true);
    ar.write("snip_train.rng", at::detail::getDefaultCPUGenerator().get_state(), true);
    ar.write("snip_train.loss_scale", c10::IValue(scaler.scale));
    ar.write("snip_train.loss_scale_good", c10::IValue(scaler.good));
    ar.write("snip_train.loss_scale_skipped", c10::IValue(scaler.skipped));
    for (const auto& p : net->named_parameters())
        ar.write("model." + p.key(), p.value().detach().cpu());
    for (const auto& b : net->named_buffers())
        ar.write("model." + b.key(), b.value().cpu(), true);
    if (sgd) {
        torch::serialize::OutputArchive opt;
        sgd->save(opt);
        ar.write("optimizer", opt);
    }
    std::ostringstream bytes;
    ar.save_to(bytes);
    detail::write_durably(path, bytes.str());
}

namespace {

checkpoint_info load_from(torch::serialize::InputArchive& ar, const std::string& path,
                          FasterRCNN& net, torch::optim::SGD* sgd, bool restore_rng,
                          const std::string* expect_setup) {
    const std::string model = detail::read_string(ar, "snip_train.model", path);
    const std::string mine = detector_identity(net->options());
    if (model != mine) {
        std::string hint;
        try { // name the network it holds when the identity reads
            const std::string name = options_from_identity(model, path).model_name();
            if (name != net->options().model_name())
                hint = " (its network is `" + name + "`, this run's `" +
                       net->options().model_name() + "`" +
                       (name == "plain" ? "; snip-train's --model plain builds it" : "") + ")";
        } catch (const snip::error&) {
        }
        snip::fail(path, ": checkpoint of another model: it holds '", model,
                   "', this run builds '", mine, "'", hint);
    }
    checkpoint_info info;
    info.setup = detail::read_string(ar, "snip_train.setup", path);
    if (expect_setup)
        snip::require(info.setup == *expect_setup, path,
                      ": checkpoint of another training setup: it has '", info.setup,
                      "', this run '", *expect_setup, "'");
    info.position.epoch =
        int(detail::read_int(ar, "snip_train.epoch", path, 0, std::numeric_limits<int>::max()));
    info.position.batch = detail::read_int(ar, "snip_train.batch", path);
    info.position.step = detail::read_int(ar, "snip_train.step", path);
    const c10::IValue cats = detail::read_typed(
        ar, "snip_train.categories", path, [](const c10::IValue& v) { return v.isIntList(); },
        "a list of integers");
    for (std::int64_t c : cats.toIntVector())
        info.category_ids.push_back(int(c));
    info.scaler.scale = detail::read_typed(
                            ar, "snip_train.loss_scale", path,
                            [](const c10::IValue& v) { return v.isDouble(); }, "a float")
                            .toDouble();
    info.scaler.good = detail::read_int(ar, "snip_train.loss_scale_good", path);
    info.scaler.skipped = detail::read_int(ar, "snip_train.loss_scale_skipped", path);
    torch::Tensor hist, rng;
    snip::require(ar.try_read("snip_train.history", hist, true), path, ": no loss history");
    info.history = detail::history_rows(hist, path);

    // Read every tensor and check it before assigning any.
    std::vector<std::pair<torch::Tensor, torch::Tensor>> assign;
    auto collect = [&](const std::string& name, const torch::Tensor& dst, bool buffer) {
        torch::Tensor t;
        snip::require(ar.try_read("model." + name, t, buffer), path, ": no tensor '", name, "'");
        snip::require(t.sizes() == dst.sizes(), path, ": tensor '", name, "' has shape ", t.sizes(),
                      ", the model's is ", dst.sizes());
        snip::require(t.scalar_type() == dst.scalar_type(), path, ": tensor '", name, "' is ",
                      c10::toString(t.scalar_type()), ", the model's is ",
                      c10::toString(dst.scalar_type()));
        assign.emplace_back(dst, t);
    };
    for (const auto& p : net->named_parameters())
        collect(p.key(), p.value(), false);
    for (const auto& b : net->named_buffers())
        collect(b.key(), b.value(), true);
    torch::serialize::InputArchive opt;
    info.has_optimizer = ar.try_read("optimizer", opt);
    // Everything that can still fail comes before the model is touched.
    if (sgd) snip::require(info.has_optimizer, path, ": no optimizer state to resume from");
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    if (restore_rng) {
        snip::require(ar.try_read("snip_train.rng", rng, true), path, ": no RNG state");
        const torch::Tensor mine_rng = gen.get_state();
        snip::require(rng.scalar_type() == mine_rng.scalar_type() &&
                          rng.sizes() == mine_rng.sizes(),
                      path, ": snip_train.rng is ", c10::toString(rng.scalar_type()), " ",
                      rng.sizes(), ", not a CPU generator state (",
                      c10::toString(mine_rng.scalar_type()), " ", mine_rng.sizes(), ")");
    }
    if (sgd) {
        try {
            sgd->load(opt);
        } catch (const std::exception& e) {
            snip::fail(path, ": the optimizer state does not fit this model's optimizer: ",
                       detail::first_line(e.what()));
        }
    }
    {
        torch::NoGradGuard ng;
        for (auto& [dst, src] : assign)
            dst.copy_(src);
    }
    if (restore_rng) gen.set_state(rng);
    return info;
}

} // namespace

checkpoint_info load_checkpoint(const std::string& path, FasterRCNN& net, torch::optim::SGD* sgd,
                                bool restore_rng, const std::string* expect_setup) {
    torch::serialize::InputArchive ar;
    detail::open_checkpoint(ar, path);
    return load_from(ar, path, net, sgd, restore_rng, expect_setup);
}

FasterRCNN load_model(const std::string& path, checkpoint_info* info) {
    torch::serialize::InputArchive ar;
    detail::open_checkpoint(ar, path); // once: a big checkpoint is read from disk one time
    FasterRCNN net(
        options_from_identity(detail::read_string(ar, "snip_train.model", path), path));
    const checkpoint_info i = load_from(ar, path, net, nullptr, false, nullptr);
    if (info) *info = i;
    return net;
}

std::string checkpoint_identity(const std::string& path) {
    torch::serialize::InputArchive ar;
    detail::open_checkpoint(ar, path);
    return detail::read_string(ar, "snip_train.model", path);
}

detector_options options_from_identity(const std::string& id, const std::string& where) {
    std::istringstream in(id);
    std::string first;
    in >> first;
    // Fields absent from the identity are the plain network's (see detector_identity).
    detector_options o = detector_options::plain();
    auto bad = [&](const std::string& why) {
        snip::fail(where, ": unreadable model identity '", id, "' (", why, ")");
    };
    if (first.rfind("resnet", 0) != 0) bad("no resnet depth");
    try {
        o.backbone.depth = std::stoi(first.substr(6));
    } catch (const std::exception&) {
        bad("no resnet depth");
    }
    std::string key;
    double value = 0;
    std::size_t anchors = 0;
    while (in >> key >> value) {
        const auto i = std::int64_t(value);
        if (key == "width")
            o.backbone.width = i;
        else if (key == "dilate_res5")
            o.backbone.dilate_res5 = i != 0;
        else if (key == "dilate_first")
            o.backbone.dilate_first_res5_block = i != 0;
        else if (key == "frozen")
            o.backbone.frozen_stages = int(i);
        else if (key == "train_bn")
            o.backbone.train_bn = i != 0;
        else if (key == "classes")
            o.num_classes = i;
        else if (key == "anchors")
            anchors = std::size_t(i);
        else if (key == "stride")
            o.anchors.stride = value;
        else if (key == "rpn")
            o.rpn_channels = i;
        else if (key == "head")
            o.head_channels = i;
        else if (key == "fc")
            o.fc_channels = i;
        else if (key == "pool")
            o.pool_size = i;
        else if (key == "deform_res5")
            o.backbone.deformable_res5_groups = i;
        else if (key == "rpn_concat")
            o.rpn_on_concat = i != 0;
        else if (key == "deform_pool") {
            o.head_pooling = roi_pooling::deformable;
            o.deform_samples = i;
        } else if (key == "trans_std")
            o.deform_trans_std = value;
        else if (key == "masks") {
            o.masks = true;
            o.mask_channels = i;
        } else if (key == "mask_pool")
            o.mask_pool = i;
        else if (key == "mask_convs")
            o.mask_convs = i;
        else
            bad("unknown field " + key);
    }
    if (anchors != o.anchors.templates().size())
        bad("it has " + std::to_string(anchors) + " anchors; this program builds " +
            std::to_string(o.anchors.templates().size()));
    if (detector_identity(o) != id) bad("it does not read back the same");
    return o;
}

namespace detail {

std::string read_string(torch::serialize::InputArchive& ar, const std::string& key,
                        const std::string& path) {
    return read_typed(
               ar, key, path, [](const c10::IValue& v) { return v.isString(); }, "a string")
        .toStringRef();
}

std::int64_t read_int(torch::serialize::InputArchive& ar, const std::string& key,
                      const std::string& path, std::int64_t lo, std::int64_t hi) {
    const std::int64_t v =
        read_typed(
            ar, key, path, [](const c10::IValue& x) { return x.isInt(); }, "an integer")
            .toInt();
    if (v < lo || v > hi)
        snip::fail(path, ": ", key, " is ", v, ", must be in [", lo, ", ", hi, "]");
    return v;
}

} // namespace detail
} // namespace snip::train
