// distributed.cpp: data-parallel training on c10d: the process group and gradient sync (declared in
// snip/train/distributed.hpp).
#include <snip/train/distributed.hpp>

namespace snip::train {

void dist_options::validate() const {
    snip::require(world_size >= 1, "distributed: world size must be >= 1, got ", world_size);
    snip::require(rank >= 0 && rank < world_size, "distributed: rank must be in [0, ",
                  world_size - 1, "], got ", rank);
    snip::require(local_rank >= 0, "distributed: local rank must be >= 0, got ", local_rank);
    snip::require(std::isfinite(timeout_s) && timeout_s > 0 && timeout_s <= 7 * 24 * 3600.0,
                  "distributed: timeout must be in (0, 604800] seconds, got ", timeout_s);
    snip::require(std::isfinite(bucket_mb) && bucket_mb > 0 && bucket_mb <= 4096,
                  "distributed: bucket size must be in (0, 4096] MB, got ", bucket_mb);
    if (world_size > 1) {
        snip::require(!init.empty(), "distributed: world size ", world_size,
                      " needs a rendezvous: --dist-init tcp://HOST:PORT or file:///PATH, "
                      "or MASTER_ADDR and MASTER_PORT");
        (void)parse_init();
    }
}

dist_options::endpoint dist_options::parse_init() const {
    if (init.rfind("tcp://", 0) == 0) {
        const std::string hp = init.substr(6);
        const std::size_t colon = hp.rfind(':');
        snip::require(colon != std::string::npos && colon > 0, "distributed: --dist-init '", init,
                      "': expected tcp://HOST:PORT");
        endpoint e{"tcp", hp.substr(0, colon), parse_int(hp.substr(colon + 1), "--dist-init port")};
        if (e.where.size() > 2 && e.where.front() == '[' && e.where.back() == ']')
            e.where = e.where.substr(1, e.where.size() - 2); // [IPv6]
        snip::require(e.port >= 1 && e.port <= 65535, "distributed: --dist-init '", init,
                      "': port must be in 1..65535, got ", e.port);
        return e;
    }
    if (init.rfind("file://", 0) == 0) {
        endpoint e{"file", init.substr(7), 0};
        snip::require(!e.where.empty(), "distributed: --dist-init '", init,
                      "': expected file:///PATH");
        return e;
    }
    snip::fail("distributed: --dist-init '", init, "': expected tcp://HOST:PORT or file:///PATH");
}

dist_options dist_options::from_env() {
    dist_options d;
    auto var = [](const char* name) -> const char* {
        const char* v = std::getenv(name);
        return v && *v ? v : nullptr;
    };
    if (const char* v = var("WORLD_SIZE")) d.world_size = parse_int(v, "WORLD_SIZE");
    if (const char* v = var("RANK")) d.rank = parse_int(v, "RANK");
    if (const char* v = var("LOCAL_RANK")) d.local_rank = parse_int(v, "LOCAL_RANK");
    const char* addr = var("MASTER_ADDR");
    const char* port = var("MASTER_PORT");
    if (addr || port)
        d.init =
            std::string("tcp://") + (addr ? addr : "127.0.0.1") + ":" + (port ? port : "29500");
    return d;
}

int dist_options::parse_int(const std::string& s, const char* what) {
    std::size_t used = 0;
    long long v = 0;
    try {
        v = std::stoll(s, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    snip::require(used == s.size() && !s.empty() && v >= std::numeric_limits<int>::min() &&
                      v <= std::numeric_limits<int>::max(),
                  "distributed: ", what, ": expected an integer, got '", s, "'");
    return int(v);
}

std::vector<std::size_t> shard_positions(std::size_t n_jobs, std::size_t global_batch, int world,
                                         int rank, std::int64_t first_batch) {
    snip::require(global_batch >= 1, "shard_positions: global batch must be >= 1");
    snip::require(world >= 1 && rank >= 0 && rank < world, "shard_positions: rank ", rank,
                  " of world ", world);
    snip::require(global_batch % std::size_t(world) == 0, "shard_positions: a global batch of ",
                  global_batch, " chips does not split over ", world, " processes");
    const std::size_t per = global_batch / std::size_t(world);
    const std::size_t batches = (n_jobs + global_batch - 1) / global_batch;
    std::vector<std::size_t> out;
    for (std::size_t k = std::size_t(std::max<std::int64_t>(0, first_batch)); k < batches; ++k)
        for (std::size_t i = 0; i < per; ++i)
            out.push_back(k * global_batch + std::size_t(rank) * per + i);
    return out;
}

std::shared_ptr<dist_group> dist_group::connect(const dist_options& o,
                                                const torch::Device& device) {
    o.validate();
    if (!o.distributed()) return nullptr;
    auto g = std::shared_ptr<dist_group>(new dist_group());
    g->rank_ = o.rank;
    g->size_ = o.world_size;
    g->device_ = device;
    g->options_ = o;
    const auto timeout = std::chrono::milliseconds(std::int64_t(o.timeout_s * 1000.0));
    const dist_options::endpoint e = o.parse_init();
    g->where_ = "rank " + std::to_string(o.rank) + " of " + std::to_string(o.world_size);
    // A backend that is not compiled in fails here, before any rank waits for the others.
#if !defined(SNIP_TORCH_HAS_NCCL)
    snip::require(!device.is_cuda(), "distributed (", g->where_,
                  "): the NCCL backend (CUDA "
                  "devices) is not compiled into this LibTorch; build snip against a CUDA "
                  "LibTorch with NCCL, or run with --device cpu (Gloo)");
#endif
#if !defined(SNIP_TORCH_HAS_GLOO)
    snip::require(device.is_cuda(), "distributed (", g->where_,
                  "): the Gloo backend (CPU) is "
                  "not compiled into this build: snip found no ProcessGroupGloo in LibTorch or "
                  "no Gloo headers (install libgloo-dev and reconfigure)");
#endif
    try {
        if (e.kind == "tcp") {
            c10d::TCPStoreOptions so;
            so.port = std::uint16_t(e.port);
            so.isServer = o.rank == 0;
            so.numWorkers = std::size_t(o.world_size);
            so.waitWorkers = true;
            so.timeout = timeout;
            g->store_ = c10::make_intrusive<c10d::TCPStore>(e.where, so);
        } else {
            g->store_ = c10::make_intrusive<c10d::FileStore>(e.where, o.world_size);
            g->store_->setTimeout(timeout);
        }
    } catch (const std::exception& ex) {
        snip::fail("distributed (", g->where_, "): rendezvous at ", o.init, " failed within ",
                   o.timeout_s, " s (are all ", o.world_size,
                   " ranks started with the same address, and is the port free?): ",
                   first_line(ex.what()));
    }
    if (device.is_cuda()) {
#if defined(SNIP_TORCH_HAS_NCCL)
        try {
            auto opts = c10d::ProcessGroupNCCL::Options::create();
            opts->timeout = timeout;
            g->pg_ =
                c10::make_intrusive<c10d::ProcessGroupNCCL>(g->store_, o.rank, o.world_size, opts);
        } catch (const std::exception& ex) {
            snip::fail("distributed (", g->where_,
                       "): starting NCCL failed: ", first_line(ex.what()));
        }
#endif
    } else {
#if defined(SNIP_TORCH_HAS_GLOO)
        try {
            auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
            opts->devices.push_back(
                e.kind == "tcp" && is_loopback(e.where)
                    ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                    : c10d::ProcessGroupGloo::createDefaultDevice());
            g->pg_ =
                c10::make_intrusive<c10d::ProcessGroupGloo>(g->store_, o.rank, o.world_size, opts);
        } catch (const std::exception& ex) {
            snip::fail("distributed (", g->where_, "): starting Gloo failed within ", o.timeout_s,
                       " s (did every rank start?): ", first_line(ex.what()));
        }
#endif
    }
    return g;
}

void dist_group::broadcast(const std::vector<torch::Tensor>& tensors, int root) {
    if (tensors.empty()) return;
    guard("broadcast", [&] {
        torch::NoGradGuard ng;
        std::vector<torch::Tensor> on;
        for (const auto& t : tensors)
            on.push_back(t.device() == device_ ? t : t.to(device_));
        c10d::broadcast_coalesced(pg_, on, 64u << 20, root);
        for (std::size_t i = 0; i < on.size(); ++i)
            if (!on[i].is_same(tensors[i])) tensors[i].copy_(on[i]);
    });
}

torch::Tensor dist_group::all_sum(const torch::Tensor& t) {
    torch::Tensor out;
    guard("all-reduce", [&] {
        std::vector<torch::Tensor> v{t.detach().to(device_).clone()};
        pg_->allreduce(v)->wait();
        out = v[0].to(t.device());
    });
    return out;
}

std::vector<std::string> dist_group::all_gather(const std::string& bytes) {
    std::vector<std::string> out;
    guard("all-gather", [&] {
        const torch::Tensor n = torch::full({1}, std::int64_t(bytes.size()), torch::kLong);
        const std::vector<torch::Tensor> sizes = gather_tensors(n);
        std::int64_t longest = 0;
        for (const auto& s : sizes)
            longest = std::max(longest, s.item<std::int64_t>());
        torch::Tensor mine = torch::zeros({std::max<std::int64_t>(1, longest)}, torch::kByte);
        std::copy(bytes.begin(), bytes.end(), mine.data_ptr<std::uint8_t>());
        const std::vector<torch::Tensor> all = gather_tensors(mine);
        for (std::size_t r = 0; r < all.size(); ++r) {
            const torch::Tensor c = all[r].contiguous();
            const auto* p = c.data_ptr<std::uint8_t>();
            out.emplace_back(reinterpret_cast<const char*>(p),
                             std::size_t(sizes[r].item<std::int64_t>()));
        }
    });
    return out;
}

torch::Tensor dist_group::gather_rows(const torch::Tensor& rows) {
    snip::require(rows.dim() == 2, "gather_rows: expected [n, k] rows, got rank ", rows.dim());
    torch::Tensor out;
    guard("all-gather", [&] {
        const torch::Tensor n = torch::full({1}, rows.size(0), torch::kLong);
        const std::vector<torch::Tensor> sizes = gather_tensors(n);
        std::int64_t longest = 0;
        for (const auto& s : sizes)
            longest = std::max(longest, s.item<std::int64_t>());
        torch::Tensor mine = torch::zeros({std::max<std::int64_t>(1, longest), rows.size(1)},
                                          rows.options().device(torch::kCPU));
        if (rows.size(0) > 0) mine.narrow(0, 0, rows.size(0)).copy_(rows);
        const std::vector<torch::Tensor> all = gather_tensors(mine);
        std::vector<torch::Tensor> parts;
        for (std::size_t r = 0; r < all.size(); ++r)
            parts.push_back(all[r].narrow(0, 0, sizes[r].item<std::int64_t>()));
        out = torch::cat(parts, 0);
    });
    return out;
}

void dist_group::barrier() {
    guard("barrier", [&] { pg_->barrier()->wait(); });
}

bool dist_group::is_loopback(const std::string& host) {
    return host == "127.0.0.1" || host == "localhost" || host == "::1";
}

std::vector<torch::Tensor> dist_group::gather_tensors(const torch::Tensor& t) {
    std::vector<std::vector<torch::Tensor>> out(1);
    const torch::Tensor in = t.to(device_);
    for (int r = 0; r < size_; ++r)
        out[0].push_back(torch::empty_like(in));
    std::vector<torch::Tensor> inputs{in};
    pg_->allgather(out, inputs)->wait();
    std::vector<torch::Tensor> res;
    for (auto& x : out[0])
        res.push_back(x.cpu());
    return res;
}

grad_sync::grad_sync(dist_group& group, std::vector<torch::Tensor> params, double bucket_mb)
    : group_(group) {
    snip::require(!params.empty(), "grad_sync: no parameters");
    const auto cap = std::size_t(bucket_mb * 1024.0 * 1024.0);
    const std::size_t first = std::min<std::size_t>(cap, 1u << 20);
    group.guard("gradient bucket setup", [&] {
        auto [buckets, limits] = c10d::compute_bucket_assignment_by_size(
            params, {first, cap}, std::vector<bool>(params.size(), false));
        std::reverse(buckets.begin(), buckets.end());
        std::reverse(limits.begin(), limits.end());
        buckets_ = buckets.size();
        reducer_ = std::make_unique<c10d::Reducer>(
            params, std::move(buckets), std::move(limits), group.process_group(),
            std::vector<bool>(params.size(), false), std::int64_t(cap),
            /*find_unused_parameters=*/true, /*gradient_as_bucket_view=*/false,
            std::unordered_map<std::size_t, std::string>{}, std::int64_t(first));
    });
}

void grad_sync::before_backward(const torch::Tensor& output) {
    group_.guard("gradient sync setup", [&] { reducer_->prepare_for_backward({output}); });
}

void grad_sync::backward(const torch::Tensor& output) {
    before_backward(output);
    group_.guard("gradient all-reduce", [&] { output.backward(); });
}

void dist_group::require_same(const std::string& what, const std::string& text) {
    const std::vector<std::string> all = all_gather(text);
    for (std::size_t r = 1; r < all.size(); ++r)
        snip::require(all[r] == all[0], "distributed (", where_, "): rank ", r, " has ", what, " '",
                      all[r], "', rank 0 '", all[0], "': every rank must run the same");
}

[[noreturn]] void dist_group::fail_collective(const std::string& op,
                                              const std::exception& e) const {
    const std::string others = reported_failures();
    if (!others.empty())
        snip::fail("distributed (", where_, "): ", op, " failed because ", others);
    snip::fail("distributed (", where_, "): ", op, " failed: another rank exited, hung for ",
               options_.timeout_s,
               " s or lost its connection (see its output): ", first_line(e.what()));
}

namespace {
std::string failure_key(int rank) { return "snip/failed/" + std::to_string(rank); }
} // namespace

void dist_group::report_failure(const std::string& message) noexcept {
    try {
        if (!store_) return;
        const std::string m = message.substr(0, 2000);
        store_->set(failure_key(rank_), std::vector<std::uint8_t>(m.begin(), m.end()));
    } catch (...) {
        // the store is gone (rank 0 exited): the other ranks' messages stay generic
    }
}

std::string dist_group::reported_failures() const noexcept {
    std::string out;
    try {
        if (!store_) return out;
        for (int r = 0; r < size_; ++r) {
            if (r == rank_ || !store_->check({failure_key(r)})) continue;
            const std::vector<std::uint8_t> v = store_->get(failure_key(r));
            out += (out.empty() ? "" : "; ") + snip::concat("rank ", r, " failed: ") +
                   std::string(v.begin(), v.end());
        }
    } catch (...) {
        // the store is gone with rank 0: say what could be read
    }
    return out;
}

std::string dist_group::first_line(const char* what) {
    const std::string s(what ? what : "");
    return s.substr(0, std::min<std::size_t>(s.find('\n'), 300));
}

} // namespace snip::train
