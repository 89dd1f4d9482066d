// The bad-input catalogue (tests/bad_inputs, see its README.md), part 2: images
// (decode_image), .snipw weights (load_weights), checkpoints (load_checkpoint) and the
// trainer. Every case folder whose reader belongs to this program is run and gives one
// CHECK naming the case; a refused weights file or checkpoint must leave the model's
// tensors as they were. Also here: failed writes (checkpoint, weights) leave the old file,
// and a resume of another setup leaves the model untouched. Part 1 (JSON readers, configs,
// the planner) is test_bad_inputs.cpp.
// LibTorch first: its headers bring glog, whose CHECK would otherwise replace doctest's.
#include <snip/train/train.hpp>
#include <snip/train/weights.hpp>

#include "trainer_test_util.hpp"

#include "test_util.hpp"

#include "bad_inputs/harness.hpp"

#include <snip/io/chips_json.hpp>
#include <snip/io/coco.hpp>

#include <torch/nn/modules/linear.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using bad_inputs::report;
using bad_inputs::test_case;
using trainer_test::tiny_model; // the checkpoint reader's model


/// Copies of every parameter and buffer, to prove a failed load changed nothing.
std::vector<torch::Tensor> snapshot(const torch::nn::Module& m) {
    std::vector<torch::Tensor> out;
    for (const auto& [name, t] : snip::train::module_tensors(m))
        out.push_back(t.detach().clone());
    return out;
}
bool unchanged(const torch::nn::Module& m, const std::vector<torch::Tensor>& before) {
    const auto now = snip::train::module_tensors(m);
    if (now.size() != before.size()) return false;
    for (std::size_t i = 0; i < now.size(); ++i)
        if (!torch::equal(now[i].second, before[i])) return false;
    return true;
}

/// What save_checkpoint writes, with one model tensor left out (`skip`) or the identity
/// stored as an int (`identity_as_int`): archives save_checkpoint itself cannot make.
void write_odd_checkpoint(const std::string& path, snip::train::FasterRCNN& net, const std::string& skip,
                          bool identity_as_int) {
    torch::serialize::OutputArchive ar;
    ar.write("snip_train.format", c10::IValue(std::int64_t(1)));
    if (identity_as_int)
        ar.write("snip_train.model", c10::IValue(std::int64_t(5)));
    else
        ar.write("snip_train.model", c10::IValue(snip::train::detector_identity(net->options())));
    ar.write("snip_train.setup", c10::IValue(std::string("setup")));
    ar.write("snip_train.epoch", c10::IValue(std::int64_t(0)));
    ar.write("snip_train.batch", c10::IValue(std::int64_t(0)));
    ar.write("snip_train.step", c10::IValue(std::int64_t(0)));
    ar.write("snip_train.categories", c10::IValue(std::vector<std::int64_t>{1, 2}));
    ar.write("snip_train.history", torch::zeros({0, 10}, torch::kDouble), true);
    ar.write("snip_train.rng", at::detail::getDefaultCPUGenerator().get_state(), true);
    ar.write("snip_train.loss_scale", c10::IValue(1.0));
    ar.write("snip_train.loss_scale_good", c10::IValue(std::int64_t(0)));
    ar.write("snip_train.loss_scale_skipped", c10::IValue(std::int64_t(0)));
    for (const auto& p : net->named_parameters())
        if (p.key() != skip) ar.write("model." + p.key(), p.value().detach());
    for (const auto& b : net->named_buffers())
        if (b.key() != skip) ar.write("model." + b.key(), b.value(), true);
    ar.save_to(path);
}

void cut_file(const std::string& from, const std::string& to, std::uintmax_t size) {
    fs::copy_file(from, to, fs::copy_options::overwrite_existing);
    fs::resize_file(to, size);
}

/// The checkpoint a `generate` name stands for, made once per run in a scratch folder.
std::string generated_checkpoint(const std::string& what) {
    static const fs::path dir = bad_inputs::scratch("torch_checkpoints");
    static std::map<std::string, std::string> made;
    if (auto it = made.find(what); it != made.end()) return it->second;
    const std::string path = (dir / (what + ".pt")).string();
    torch::manual_seed(11);
    snip::train::FasterRCNN net(tiny_model(2));
    torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
    const std::string base = (dir / "base.pt").string();
    if (!fs::exists(base)) snip::train::save_checkpoint(base, net, &sgd, {}, "setup", {}, {1, 2});
    if (what == "other_model") {
        snip::train::FasterRCNN three(tiny_model(3));
        snip::train::save_checkpoint(path, three, nullptr, {}, "setup", {}, {1, 2, 3});
    } else if (what == "truncated") {
        cut_file(base, path, fs::file_size(base) / 2);
    } else if (what == "tail_cut") {
        cut_file(base, path, fs::file_size(base) - 10);
    } else if (what == "not_snip_train") {
        torch::serialize::OutputArchive ar;
        ar.write("weights", torch::ones({3}));
        ar.save_to(path);
    } else if (what == "model_not_string") {
        write_odd_checkpoint(path, net, "", true);
    } else if (what == "no_optimizer") {
        snip::train::save_checkpoint(path, net, nullptr, {}, "setup", {}, {1, 2});
    } else if (what == "missing_tensor") {
        write_odd_checkpoint(path, net, "bbox_pred.bias", false);
    } else {
        throw std::logic_error("unknown checkpoint generator '" + what + "'");
    }
    made[what] = path;
    return path;
}

/// A uniform grey image of the dataset image's size.
snip::train::image_source grey_images(const snip::dataset& ds) {
    return [&ds](std::size_t i) {
        snip::train::image im(ds.images.at(i).width, ds.images.at(i).height);
        std::fill(im.px.begin(), im.px.end(), std::uint8_t(128));
        return im;
    };
}

const std::map<std::string, bad_inputs::reader_fn>& readers() {
    static const std::map<std::string, bad_inputs::reader_fn> r{
        {"image",
         [](const test_case& c, report& rep) {
             const snip::train::image im = snip::train::decode_image(c.file("input"));
             const auto& k = c.checks();
             if (k.contains("width")) rep.check(im.w == k["width"].get<int>(), "wrong width");
             if (k.contains("height")) rep.check(im.h == k["height"].get<int>(), "wrong height");
             rep.check(im.px.size() == std::size_t(im.w) * std::size_t(im.h) * 3,
                       "wrong buffer size");
         }},
        {"weights",
         [](const test_case& c, report& rep) {
             torch::nn::Linear lin(2, 3);
             {
                 torch::NoGradGuard ng;
                 lin->weight.fill_(7.f);
                 lin->bias.fill_(7.f);
             }
             const auto before = snapshot(*lin);
             try {
                 snip::train::load_weights(*lin, c.file("input"), /*strict=*/true);
             } catch (...) {
                 rep.check(unchanged(*lin, before), "the module changed although the load failed");
                 throw;
             }
             if (c.checks().contains("all")) {
                 const float v = c.checks()["all"].get<float>();
                 rep.check(torch::all(lin->weight == v).item<bool>() &&
                               torch::all(lin->bias == v).item<bool>(),
                           "the loaded values differ from the file's");
             }
         }},
        {"checkpoint",
         [](const test_case& c, report& rep) {
             std::string path = c.file("input");
             if (!c.generate().empty()) rep.primary = path = generated_checkpoint(c.generate());
             torch::manual_seed(3);
             snip::train::FasterRCNN net(tiny_model(2));
             std::unique_ptr<torch::optim::SGD> sgd;
             if (c.spec.value("with_optimizer", false))
                 sgd = std::make_unique<torch::optim::SGD>(
                     net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
             const auto before = snapshot(*net);
             try {
                 snip::train::load_checkpoint(path, net, sgd.get(), /*restore_rng=*/sgd != nullptr);
             } catch (...) {
                 rep.check(unchanged(*net, before), "the model changed although the load failed");
                 throw;
             }
         }},
        {"train",
         [](const test_case& c, report&) {
             const snip::dataset ds = snip::io::read_coco(c.file("dataset"));
             snip::plan_config cfg = snip::plan_config::defaults();
             if (c.has("config"))
                 cfg = snip::io::config_from_json(
                     snip::io::read_json_file(c.file("config")), c.file("config"));
             const snip::train::class_map classes(ds);
             torch::manual_seed(5);
             snip::train::FasterRCNN net(tiny_model(std::max(1, classes.num_classes())));
             snip::train::train_options o;
             o.epochs = 1;
             o.batch_size = 1;
             o.warmup_chips = 0;
             o.workers = 1;
             o.plan_threads = 1;
             o.max_steps = 1;
             o.quiet = true;
             snip::train::train(net, ds, cfg, grey_images(ds), nullptr, o);
         }},
    };
    return r;
}

} // namespace

TEST_CASE("bad-input catalogue: images, weights, checkpoints and the trainer") {
    const auto verdicts = bad_inputs::run_all("test_torch_trainer_bad_inputs", readers());
    CHECK(verdicts.size() >= 40);
    for (const auto& [name, why] : verdicts)
        CHECK_MESSAGE(why.empty(), name << ": " << why);
}

TEST_CASE("an empty dataset in memory: the trainer refuses it, naming it") {
    // (An empty dataset FILE never gets here: read_coco refuses it, see train_empty_dataset.)
    snip::dataset ds;
    ds.source = "empty.json";
    ds.categories = {{1, "thing"}};
    torch::manual_seed(5);
    snip::train::FasterRCNN net(tiny_model(1));
    snip::train::train_options o;
    o.epochs = 1;
    o.quiet = true;
    CHECK_THROWS_WITH_AS(
        snip::train::train(net, ds, snip::plan_config::defaults(), grey_images(ds), nullptr, o),
        doctest::Contains("the dataset empty.json has no images"), snip::error);
}

TEST_CASE("loses nothing: a failed checkpoint write leaves the old checkpoint") {
    const fs::path d = bad_inputs::scratch("torch_writes");
    const std::string ck = (d / "checkpoint.pt").string();
    torch::manual_seed(1);
    snip::train::FasterRCNN net(tiny_model(2));
    snip::train::save_checkpoint(ck, net, nullptr, {}, "setup", {}, {1, 2});
    const std::string old = bad_inputs::slurp(ck);
    REQUIRE(!old.empty());
    // The temporary file cannot be created: the error names the checkpoint, the old one
    // is intact and still loads.
    fs::create_directories(ck + ".tmp");
    snip::train::train_position later;
    later.step = 5;
    CHECK_THROWS_WITH_AS(snip::train::save_checkpoint(ck, net, nullptr, later, "setup", {}, {1, 2}),
                         doctest::Contains(ck.c_str()), snip::error);
    CHECK(bad_inputs::slurp(ck) == old);
    CHECK(snip::train::load_checkpoint(ck, net).position.step == 0);
    fs::remove_all(d);
}

TEST_CASE("loses nothing: a refused resume (another setup) leaves the model untouched") {
    const fs::path d = bad_inputs::scratch("torch_setup");
    const std::string ck = (d / "checkpoint.pt").string();
    torch::manual_seed(1);
    snip::train::FasterRCNN saved(tiny_model(2));
    torch::optim::SGD sgd0(saved->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
    snip::train::save_checkpoint(ck, saved, &sgd0, {}, "seed 17", {}, {1, 2});
    torch::manual_seed(2);
    snip::train::FasterRCNN net(tiny_model(2));
    torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
    const auto before = snapshot(*net);
    const std::string mine = "seed 18";
    CHECK_THROWS_WITH_AS(
        snip::train::load_checkpoint(ck, net, &sgd, true, &mine),
        doctest::Contains("checkpoint of another training setup: it has 'seed 17'"), snip::error);
    CHECK(unchanged(*net, before));
    fs::remove_all(d);
}

TEST_CASE("loses nothing: a failed weights write leaves the old file") {
    const fs::path d = bad_inputs::scratch("torch_weights");
    const std::string w = (d / "model.snipw").string();
    torch::nn::Linear lin(2, 3);
    snip::train::save_weights(*lin, w);
    const std::string old = bad_inputs::slurp(w);
    REQUIRE(!old.empty());
    // A dtype the format lacks: refused before anything is written.
    snip::train::named_tensors bad = snip::train::module_tensors(*lin);
    bad.emplace_back("z", torch::zeros({2}, torch::kComplexFloat));
    CHECK_THROWS_WITH_AS(snip::train::write_weights(w, bad), doctest::Contains("is not supported"),
                         snip::error);
    CHECK(bad_inputs::slurp(w) == old);
    // The rename fails (a folder sits at the name): the temporary file is removed.
    const std::string dir_target = (d / "folder.snipw").string();
    fs::create_directories(fs::path(dir_target) / "inside");
    CHECK_THROWS_AS(snip::train::save_weights(*lin, dir_target), snip::error);
    std::size_t files = 0;
    for (const auto& e : fs::directory_iterator(d))
        files += e.is_regular_file();
    CHECK(files == 1); // model.snipw only: no temporary left behind
    fs::remove_all(d);
}
