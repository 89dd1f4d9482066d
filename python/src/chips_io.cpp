// chips_io.cpp: the chips JSON of `snip-chips plan --out` in snip._chips: ChipsFile (and
// its ImageChips, ScaleEntry, ChipEntry), make_chips_file, write_chips, read_chips
// (snip/io/chips_json.hpp).
#include "chips_parts.hpp"

#include <snip/io/chips_json.hpp>

namespace snip::py {

namespace {

using snip::io::chip_entry;
using snip::io::chips_file;
using snip::io::image_chips;
using snip::io::scale_entry;

template <class T>
pyb::tuple box_tuple(const snip::box<T>& b) {
    return pyb::make_tuple(b.x1, b.y1, b.x2, b.y2);
}

} // namespace

void bind_chips_io(pyb::module_& m) {
    pyb::class_<scale_entry>(m, "ScaleEntry", "One scale of an image in a chips file: factor, width, height, stride, "
                                              "valid_ids and uncoverable_ids (annotation ids).")
        .def_readonly("factor", &scale_entry::factor, "Resize factor of the scale for this image.")
        .def_readonly("width", &scale_entry::width, "Scaled width, px.")
        .def_readonly("height", &scale_entry::height, "Scaled height, px.")
        .def_readonly("stride", &scale_entry::stride, "Candidate stride of the epoch, px.")
        .def_readonly("valid_ids", &scale_entry::valid_ids, "Annotation ids of the boxes valid at this scale.")
        .def_readonly("uncoverable_ids", &scale_entry::uncoverable_ids, "Annotation ids of valid boxes no candidate chip can contain.");

    pyb::class_<chip_entry>(m, "ChipEntry", R"doc(One chip of an image in a chips file.

scale; negative (bool); box: (x1, y1, x2, y2) original px; rect: (x1, y1, x2, y2) scaled
px; ann_ids: annotation ids assigned to it; negatives: proposals (count), proposal_ids
(indices into the image's proposal list) and sampled (used this epoch).)doc")
        .def_readonly("scale", &chip_entry::scale, "Scale index.")
        .def_readonly("negative", &chip_entry::negative, "True for a negative chip.")
        .def_property_readonly("box", [](const chip_entry& c) { return box_tuple(c.box); }, "(x1, y1, x2, y2), original px.")
        .def_property_readonly("rect", [](const chip_entry& c) { return box_tuple(c.rect); }, "(x1, y1, x2, y2), scaled px.")
        .def_readonly("ann_ids", &chip_entry::ann_ids, "Annotation ids assigned to the chip.")
        .def_readonly("proposals", &chip_entry::proposals, "Negatives: the number of proposals counted in the chip.")
        .def_readonly("proposal_ids", &chip_entry::proposal_ids, "Negatives: those proposals, indices into the image's proposal list.")
        .def_readonly("sampled", &chip_entry::sampled, "Negatives: used this epoch.")
        .def("__repr__", [](const chip_entry& c) {
            return snip::concat("ChipEntry(", c.negative ? "negative" : "positive", ", scale=", c.scale, ", rect=(",
                                c.rect.x1, ", ", c.rect.y1, ", ", c.rect.x2, ", ", c.rect.y2, "))");
        });

    pyb::class_<image_chips>(m, "ImageChips", "One image of a chips file: id, file_name, width, height, scales "
                                              "(ScaleEntry), chips (ChipEntry: positives, then negatives).")
        .def_readonly("id", &image_chips::id, "The image's id.")
        .def_readonly("file_name", &image_chips::file_name, "The image's file name.")
        .def_readonly("width", &image_chips::width, "Width, original px.")
        .def_readonly("height", &image_chips::height, "Height, original px.")
        .def_property_readonly(
            "scales", [](const image_chips& i) -> const std::vector<scale_entry>& { return i.scales; },
            pyb::return_value_policy::reference_internal, "One ScaleEntry per config scale.")
        .def_property_readonly(
            "chips", [](const image_chips& i) -> const std::vector<chip_entry>& { return i.chips; },
            pyb::return_value_policy::reference_internal, "ChipEntry list: the positives, then the negatives.")
        .def("__repr__", [](const image_chips& i) {
            return snip::concat("ImageChips(id=", i.id, ", file_name='", i.file_name, "', chips=", i.chips.size(), ")");
        });

    pyb::class_<chips_file>(m, "ChipsFile", R"doc(The chips JSON of one planned epoch (snip::io::chips_file, format "snip-chips/2").

version, annotations, proposals (paths as written), config (PlanConfig), seed, epoch,
images (ImageChips, one per image: annotation ids rather than indices). to_dict() is the
JSON; write(path) writes the file `snip-chips plan --out` writes.)doc")
        .def_readonly("version", &chips_file::version, "Format version: 2 (1 for a file read in the older format).")
        .def_readonly("annotations", &chips_file::annotations, "The annotation file the chips were planned from, as written.")
        .def_readonly("proposals", &chips_file::proposals, "The proposals file, as written ('' when none).")
        .def_readonly("config", &chips_file::config, "The PlanConfig the chips were planned with (a copy).")
        .def_readonly("seed", &chips_file::seed, "Seed of the epoch's draws.")
        .def_readonly("epoch", &chips_file::epoch, "Epoch number.")
        .def_property_readonly(
            "images", [](const chips_file& f) -> const std::vector<image_chips>& { return f.images; },
            pyb::return_value_policy::reference_internal, "One ImageChips per image, in the dataset's order.")
        .def("__len__", [](const chips_file& f) { return f.images.size(); }, "The number of images.")
        .def(
            "to_dict", [](const chips_file& f) { return from_json_value(snip::io::to_json(f)); },
            "The chips JSON as a dict.")
        .def(
            "write", [](const chips_file& f, const std::string& path, int indent) { snip::io::write_chips(f, path, indent); },
            pyb::arg("path"), pyb::arg("indent") = -1,
            "Writes the chips JSON to `path` atomically (indent < 0: compact), creating its folder.")
        .def(
            "validate",
            [](const chips_file& f, const py_dataset& d, const std::string& source) {
                snip::io::validate_chips(f, d.ds, source);
            },
            pyb::arg("dataset"), pyb::arg("source") = "chips file",
            "Checks the file against the annotations it was planned from and its config "
            "(snip::io::validate_chips); snip.Error names the image, chip, field and value.")
        .def("__repr__", [](const chips_file& f) {
            return snip::concat("ChipsFile(version=", f.version, ", config='", f.config.name, "', seed=", f.seed,
                                ", epoch=", f.epoch, ", images=", f.images.size(), ")");
        });

    m.def(
        "make_chips_file",
        [](const py_dataset& d, const std::vector<snip::image_chips_plan>& plans, const snip::plan_config& cfg,
           std::uint64_t seed, int epoch, const std::string& annotations, const std::string& proposals) {
            return snip::io::make_chips_file(d.ds, plans, cfg, seed, epoch, annotations, proposals);
        },
        pyb::arg("dataset"), pyb::arg("plans"), pyb::arg("cfg"), pyb::arg("seed") = 0, pyb::arg("epoch") = 0,
        pyb::arg("annotations") = "", pyb::arg("proposals") = "",
        R"doc(The chips file of one planned epoch (snip::io::make_chips_file) -> ChipsFile.

plans: plan_dataset(cfg, dataset, ..., seed=seed, epoch=epoch); annotations, proposals:
the paths the file names (what `snip-chips plan` writes: its --annotations and --proposals).)doc");
    m.def(
        "write_chips",
        [](const std::string& path, const py_dataset& d, const std::vector<snip::image_chips_plan>& plans,
           const snip::plan_config& cfg, std::uint64_t seed, int epoch, const std::string& annotations,
           const std::string& proposals, int indent) {
            const auto f = snip::io::make_chips_file(d.ds, plans, cfg, seed, epoch, annotations, proposals);
            release_gil nogil;
            snip::io::write_chips(f, path, indent);
        },
        pyb::arg("path"), pyb::arg("dataset"), pyb::arg("plans"), pyb::arg("cfg"), pyb::arg("seed") = 0,
        pyb::arg("epoch") = 0, pyb::arg("annotations") = "", pyb::arg("proposals") = "", pyb::arg("indent") = -1,
        R"doc(Writes the chips JSON of one planned epoch, the file `snip-chips plan --out` writes
(make_chips_file + snip::io::write_chips, atomically).)doc");
    m.def(
        "read_chips",
        [](const std::string& path, const std::shared_ptr<py_dataset>& d) {
            release_gil nogil;
            return d ? snip::io::read_chips(path, d->ds) : snip::io::read_chips(path);
        },
        pyb::arg("path"), pyb::arg("dataset").none(true) = pyb::none(),
        R"doc(Reads a chips JSON file (snip::io::read_chips) -> ChipsFile; with `dataset`, also checks
it against those annotations and its config (validate_chips). snip.Error names the file,
field and value.)doc");
}

} // namespace snip::py
