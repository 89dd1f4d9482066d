// distributed.hpp: data-parallel training and inference across processes and machines on
// LibTorch's c10d (torch.distributed's C++ engine): ProcessGroupGloo on the CPU,
// ProcessGroupNCCL on CUDA, a TCP or shared-file store for the rendezvous, and c10d's own
// DDP gradient Reducer (the C++ half of torch.nn.parallel.DistributedDataParallel).
//
//   snip::train::dist_options d = snip::train::dist_options::from_env();   // WORLD_SIZE, RANK, ...
//   auto group = snip::train::dist_group::connect(d, torch::kCPU);    // null when world size 1
//   snip::train::train(net, ds, cfg, source, props, train_opts, group.get());
//
// What is split how (train.hpp, snip_train/cmd_infer.cpp):
//   - Every rank plans the whole epoch from the shared seed (the same global chip list), pads
//     it to whole global batches by wrapping round to its first chips, and takes chips
//     [k*G + r*G/W, k*G + (r+1)*G/W) of global batch k (shard_positions): disjoint, equal
//     shards, whatever the world size W, for a global batch G that W divides.
//   - Chip c of a global batch samples anchors and RoIs with a seed of (step, c), and the
//     losses are normalised by GLOBAL counts (sampled anchors, sampled RoIs: one all-reduce of
//     two numbers per step), so W processes of G/W chips compute the same gradient as one
//     process of G chips, up to float summation order.
//   - Gradients are averaged by c10d::Reducer: buckets of about 25 MB (the first 1 MB)
//     all-reduced asynchronously as soon as their gradients are ready during backward;
//     parameters that no rank used in a step (the head in the RPN stage) keep no gradient.
//   - Rank 0's weights, buffers, momentum and position are broadcast at the start (and after
//     it alone reads a checkpoint to resume); rank 0 alone writes checkpoints, logs and plots.
//   - proposals / detect: image i goes to rank i mod W; rank 0 gathers the results and writes.
// Failures: every collective waits at most `timeout_s`; a rank that dies makes the others'
// next collective fail at once (connection reset) or after the timeout (a hung peer), with a
// snip::error that says which rank saw what.
#pragma once

#include <snip/core/error.hpp>

#include <torch/torch.h>

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/comm.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#if defined(SNIP_TORCH_HAS_GLOO)
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if defined(SNIP_TORCH_HAS_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace snip::train {

/// @brief Where a process stands in a distributed run and how the ranks meet.
struct dist_options {
    int world_size = 1;      ///< processes in all
    int rank = 0;            ///< this process, 0..world_size-1; rank 0 writes the outputs
    int local_rank = 0;      ///< this process on its machine (picks cuda:local_rank)
    /// Rendezvous: tcp://HOST:PORT (rank 0 serves a c10d TCPStore there; every rank
    /// connects) or file:///PATH (a c10d FileStore on a file system all ranks share; the
    /// file must not exist before the run).
    std::string init;
    double timeout_s = 300;  ///< longest wait of the rendezvous and of any collective
    double bucket_mb = 25;   ///< gradient bucket size (DDP's bucket_cap_mb)

    bool distributed() const { return world_size > 1; }

    /// @throws snip::error naming the field when the options cannot start a run.
    void validate() const;

    /// @brief The rendezvous: {"tcp", host, port} or {"file", path, 0}.
    struct endpoint {
        std::string kind, where;
        int port = 0;
    };
    endpoint parse_init() const;

    /// @brief The options torchrun-style launchers set: WORLD_SIZE, RANK, LOCAL_RANK,
    /// MASTER_ADDR, MASTER_PORT (each optional; a malformed one is an error naming it).
    static dist_options from_env();

    static int parse_int(const std::string& s, const char* what);
};

/// @brief Positions (into the epoch's chip list padded to whole global batches) that rank
/// `rank` of `world` trains on, batch by batch from `first_batch`: rank r takes chips
/// [k*G + r*G/W, k*G + (r+1)*G/W) of global batch k. A position p >= n_jobs stands for chip
/// p - n_jobs (the padding wraps round to the first chips; p < 2 n_jobs unless G > n_jobs,
/// where it wraps again: position p is chip p mod n_jobs).
std::vector<std::size_t> shard_positions(std::size_t n_jobs, std::size_t global_batch,
                                         int world, int rank,
                                         std::int64_t first_batch = 0);

/// @brief A process group: this process's rank among `size()` processes joined by c10d,
/// with the few collectives the trainer needs. Every call is collective (all ranks call it
/// in the same order); failures become snip::error naming the rank and the operation.
class dist_group {
public:
    /// @brief Joins the run `o` describes with the backend of `device` (Gloo for the CPU,
    /// NCCL for CUDA). Returns null when the world size is 1 (nothing to join).
    static std::shared_ptr<dist_group> connect(const dist_options& o, const torch::Device& device);

    int rank() const { return rank_; }
    int size() const { return size_; }
    bool main() const { return rank_ == 0; }
    const dist_options& options() const { return options_; }
    const c10::intrusive_ptr<c10d::ProcessGroup>& process_group() const { return pg_; }

    /// @brief Copies rank `root`'s values of `tensors` into every rank's, in place, in
    /// buckets (c10d::broadcast_coalesced). Shapes must agree across ranks.
    void broadcast(const std::vector<torch::Tensor>& tensors, int root = 0);

    /// @brief The element-wise sum over ranks of `t` (any device; returned on t's device).
    torch::Tensor all_sum(const torch::Tensor& t);

    /// @brief Every rank's `bytes`, in rank order, on every rank.
    std::vector<std::string> all_gather(const std::string& bytes);

    /// @brief The rows of every rank's `rows` ([n_r, k], any dtype), concatenated in rank
    /// order, on every rank.
    torch::Tensor gather_rows(const torch::Tensor& rows);

    /// @brief Waits until every rank gets here.
    void barrier();

    /// @brief Runs `fn` on this rank, then lets every rank know whether every rank's `fn`
    /// succeeded: the failing rank rethrows its own error, the others throw one that names
    /// it, its message and `what`. (So an error on one rank, say a checkpoint that does not
    /// fit, stops all of them with the real reason instead of a lost connection.)
    template <class Fn>
    void agree(const std::string& what, Fn&& fn) {
        std::exception_ptr mine;
        std::string msg;
        try {
            fn();
        } catch (const std::exception& e) {
            mine = std::current_exception();
            msg = e.what();
            if (msg.empty()) msg = "failed";
        }
        const std::vector<std::string> all = all_gather(msg);
        if (mine) std::rethrow_exception(mine);
        for (std::size_t r = 0; r < all.size(); ++r)
            if (!all[r].empty())
                snip::fail("distributed (", where_, "): rank ", r, " failed to ", what, ": ", all[r]);
    }

    /// @brief Every rank's `text` must equal rank 0's (a model identity, a training setup):
    /// otherwise every rank throws naming `what` and the first rank that differs.
    void require_same(const std::string& what, const std::string& text);

    /// Runs `fn`, turning LibTorch / Gloo errors into a snip::error that names this rank,
    /// the operation and the likely cause.
    template <class Fn>
    void guard(const char* op, Fn&& fn) {
        try {
            fn();
        } catch (const snip::error&) {
            throw;
        } catch (const std::exception& e) {
            fail_collective(op, e);
        }
    }
    [[noreturn]] void fail_collective(const std::string& op, const std::exception& e) const;

    /// @brief Leaves this rank's error in the rendezvous store (best effort, never throws),
    /// so that the other ranks, whose next collective fails when this rank exits, name this
    /// rank and its message instead of a lost connection. train() calls it on its way out
    /// with an error; programs call it for errors outside train().
    void report_failure(const std::string& message) noexcept;

    /// @brief "rank R: MESSAGE" of every other rank that reported a failure ("" if none, or
    /// when the store is gone with rank 0).
    std::string reported_failures() const noexcept;

    static std::string first_line(const char* what);

private:
    dist_group() = default;

    static bool is_loopback(const std::string& host);

    std::vector<torch::Tensor> gather_tensors(const torch::Tensor& t);

    int rank_ = 0, size_ = 1;
    torch::Device device_ = torch::kCPU;
    dist_options options_;
    std::string where_;
    c10::intrusive_ptr<c10d::Store> store_;
    c10::intrusive_ptr<c10d::ProcessGroup> pg_;
};

/// @brief Gradient averaging over a dist_group with c10d's DDP Reducer: `params`' gradients
/// are bucketed (the first bucket 1 MB, then `bucket_mb`; buckets in reverse parameter
/// order, roughly the order backward produces them) and each bucket is all-reduced
/// asynchronously as soon as all its gradients are ready, overlapping the rest of the
/// backward pass; the averaged gradients are in the parameters' .grad when backward
/// returns. Unused parameters are found each step (find_unused_parameters): one no rank
/// used keeps no gradient, so the optimizer skips it as in a single process.
class grad_sync {
public:
    grad_sync(dist_group& group, std::vector<torch::Tensor> params, double bucket_mb);

    /// Call before the forward pass of a step whose gradients are to be averaged.
    void before_forward() { reducer_->prepare_for_forward(); }
    /// Call with the tensor that backward() will be called on.
    void before_backward(const torch::Tensor& output);
    /// Runs `output.backward()` with the gradients averaged over the ranks.
    void backward(const torch::Tensor& output);
    std::size_t buckets() const { return buckets_; }

private:
    dist_group& group_;
    std::unique_ptr<c10d::Reducer> reducer_;
    std::size_t buckets_ = 0;
};

} // namespace snip::train
