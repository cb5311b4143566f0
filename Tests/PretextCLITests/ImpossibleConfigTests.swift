import Foundation
import XCTest

/// Configs that are valid YAML but cannot run: each gives a clear `Error:` and exit
/// status 1 within a second, before anything is allocated or written; `--dry-run`
/// checks a run without writing; the memory plan holds on the shipped configs.
final class ImpossibleConfigTests: XCTestCase {
  var dir: URL!
  var data: String { dir.appendingPathComponent("fm/unlabeled").path }
  var runs: String { dir.appendingPathComponent("runs").path }

  override func setUpWithError() throws {
    dir = try makeImportedTinyFashionMNIST(prefix: "pretext-impossible", train: 128, test: 20) { i, y, x in
      UInt8(((y * 28 + x) * 7 + i * 13) % 251)
    }
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(at: dir)
  }

  /// The workload of the bad-config table, small: a narrow ResNet-18 with SimCLR, 3 steps.
  func config(_ task: String = "{name: simclr}", name: String = "exp.yaml") throws -> String {
    let path = dir.appendingPathComponent(name).path
    try """
    name: tiny
    output: \(runs)
    data: {unlabeled: \(data)}
    backbone: {preset: resnet18-small, image_size: 28, in_channels: 1, width: 8}
    task: \(task)
    train: {batch_size: 16, steps: 3, log_every: 1}
    """.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  func pretrain(_ args: [String]) throws -> (status: Int32, out: String, err: String, seconds: Double) {
    let start = Date()
    let r = try runPretext(["pretrain"] + args + ["--threads", "1"])
    return (r.status, r.out, r.err, Date().timeIntervalSince(start))
  }

  func assertRefused(
    _ r: (status: Int32, out: String, err: String, seconds: Double), _ expected: [String],
    file: StaticString = #filePath, line: UInt = #line
  ) {
    XCTAssertEqual(r.status, 1, r.err, file: file, line: line)
    for e in expected { XCTAssertTrue(r.err.contains(e), "expected \"\(e)\" in:\n\(r.err)", file: file, line: line) }
    XCTAssertLessThan(r.seconds, 1, "refused within a second", file: file, line: line)
    XCTAssertFalse(FileManager.default.fileExists(atPath: runs), "nothing written", file: file, line: line)
  }

  /// Image sizes and widths no machine holds are refused from the config's formulas,
  /// naming the estimate, the limit and what to lower; minutes beyond a year by range.
  func testImpossibleSizesAreRefusedBeforeAnyAllocation() throws {
    let path = try config()
    assertRefused(
      try pretrain([path, "--set", "backbone.image_size=60000"]),
      [
        "exp.yaml:4 (or --set backbone.image_size=60000): this run needs at least", "TB of memory", "available (",
        "lower train.batch_size (", "backbone.image_size or backbone.width",
      ])
    assertRefused(
      try pretrain([path, "--set", "backbone.width=1000000"]),
      ["exp.yaml:4 (or --set backbone.width=1000000): this run needs at least", "PB of memory"])
    assertRefused(
      try pretrain([path, "--set", "backbone.width=100000000"]),
      ["Error: --set backbone.width=100000000: backbone.width must be in [1, 1048576], got 100000000"])
    assertRefused(
      try pretrain([path, "--set", "train.minutes=1e30", "--set", "train.steps=0"]),
      ["Error: --set train.minutes=1e30: train.minutes must be in [0, 525960], got 1e+30"])
    assertRefused(
      try pretrain([path, "--set", "task.blur_sigma=[0.1, .inf]"]),
      [
        "Error: --set task.blur_sigma=[0.1, .inf]: simclr.blur_sigma takes two numbers [low, high] in (0, 100] with low ≤ high, got [0.1, inf]"
      ])
  }

  /// Nine levels of nine aliases (9^9 values once expanded) in a config's task section,
  /// or in a compare file, are refused from the text, naming the file.
  func testAliasBombsAreRefusedBeforeTheyExpand() throws {
    var lines = ["  x0: &a0 [lol]"]
    for i in 1...9 {
      lines.append("  x\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 9).joined(separator: ",") + "]")
    }
    let path = try config("\n  name: simclr\n" + lines.joined(separator: "\n"), name: "laughs.yaml")
    assertRefused(
      try pretrain([path]),
      ["Error: \(path): the YAML expands to more than 100000 values once its aliases (*name) are expanded"])
    let compare = dir.appendingPathComponent("laughs-compare.yaml").path
    try ("name: c\nexperiments: [exp.yaml]\nprobe:\n" + lines.joined(separator: "\n") + "\n")
      .write(toFile: compare, atomically: true, encoding: .utf8)
    _ = try config()
    let start = Date()
    let r = try runPretext(["compare", compare, "--dry-run"])
    XCTAssertEqual(r.status, 1, r.err)
    XCTAssertTrue(r.err.contains("Error: \(compare): the YAML expands to more than 100000 values"), r.err)
    XCTAssertLessThan(Date().timeIntervalSince(start), 1)
    // A real config's aliases (a list reused) are fine.
    let reused = try config("{name: simclr, crop_scale: &s [0.2, 1.0], blur_sigma: *s}", name: "alias.yaml")
    XCTAssertEqual(try pretrain([reused, "--dry-run"]).status, 0)
  }

  /// `--dry-run` checks and prints the plan and writes nothing: no run folder, no file.
  func testDryRunPrintsThePlanAndWritesNothing() throws {
    let path = try config()
    let before = try FileManager.default.subpathsOfDirectory(atPath: dir.path).sorted()
    let r = try pretrain([path, "--dry-run"])
    XCTAssertEqual(r.status, 0, r.err)
    for expected in [
      "steps:       3,", "epochs of 8 steps", "memory:      about", "checkpoints:", "time:        about",
    ] {
      XCTAssertTrue(r.out.contains(expected), "expected \"\(expected)\" in:\n\(r.out)")
    }
    XCTAssertTrue(r.err.contains("memory: about"), r.err)
    XCTAssertEqual(try FileManager.default.subpathsOfDirectory(atPath: dir.path).sorted(), before)
    // Bad input is still refused (here: a run folder that cannot be created).
    try "x".write(toFile: runs, atomically: true, encoding: .utf8)
    let blocked = try pretrain([path, "--dry-run"])
    XCTAssertEqual(blocked.status, 1)
    XCTAssertTrue(
      blocked.err.contains("Error: cannot create the run folder \(runs)/tiny: a file has the name"), blocked.err)
    try FileManager.default.removeItem(atPath: runs)
    // compare --dry-run: the same checks for each experiment, the probe's folders too.
    let compare = dir.appendingPathComponent("c.yaml").path
    try """
    name: c
    output: \(runs)
    experiments: [exp.yaml]
    probe: {train: \(dir.appendingPathComponent("fm/train").path), test: \(dir.appendingPathComponent("fm/test").path)}
    """.write(toFile: compare, atomically: true, encoding: .utf8)
    let before2 = try FileManager.default.subpathsOfDirectory(atPath: dir.path).sorted()
    let c = try runPretext(["compare", compare, "--dry-run", "--threads", "1"])
    XCTAssertEqual(c.status, 0, c.err)
    XCTAssertTrue(c.out.contains("[1/1] tiny: would pretrain simclr; plan for"), c.out)
    XCTAssertEqual(try FileManager.default.subpathsOfDirectory(atPath: dir.path).sorted(), before2)
  }

  /// The memory plan against the peak resident memory (`VmHWM`) of real runs of every
  /// shipped experiment config, both recorded in pretrain.json: within ±25% (the plan's
  /// promise). Batch 128 (`bench train`'s ResNet batch; half the configs' own 256, which
  /// the README's table also reports) and 2 steps keep it fast. The -20min and -60min
  /// variants are their base config with another name and minutes budget — nothing that
  /// changes memory — so the base's run stands for them.
  func testTheMemoryPlanHoldsOnTheShippedConfigs() throws {
    let experiments = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("experiments")
    let shipped = try FileManager.default.contentsOfDirectory(atPath: experiments.path).filter {
      $0.hasSuffix(".yaml") && !$0.hasPrefix("compare-") && !$0.hasSuffix("-base.yaml")
    }.sorted()
    XCTAssertEqual(
      shipped,
      [
        "byol-20min.yaml", "byol.yaml", "mae.yaml", "moco-v3-20min.yaml", "moco-v3.yaml", "photos-simclr.yaml",
        "relative-location.yaml", "rotation.yaml", "shapes-simclr.yaml", "simclr-20min.yaml", "simclr-60min.yaml",
        "simclr-resnet10-20min.yaml", "simclr-resnet10.yaml", "simclr.yaml",
      ])
    for variant in ["simclr-20min", "simclr-60min", "simclr-resnet10-20min", "byol-20min", "moco-v3-20min"] {
      let lines = try String(contentsOf: experiments.appendingPathComponent("\(variant).yaml"), encoding: .utf8)
        .split(separator: "\n").filter { !$0.hasPrefix("#") }
      XCTAssertEqual(lines.count, 4, "\(variant): \(lines)")
      XCTAssertEqual(lines.first, "base: \(variant.split(separator: "-").dropLast().joined(separator: "-")).yaml")
      XCTAssertEqual(lines.dropFirst().first, "name: \(variant)")
      XCTAssertEqual(lines.dropFirst(2).first, "train:")
      XCTAssertTrue(lines.last?.hasPrefix("  minutes: ") ?? false, "\(variant): \(lines)")
    }
    for name in [
      "byol.yaml", "mae.yaml", "moco-v3.yaml", "photos-simclr.yaml", "relative-location.yaml", "rotation.yaml",
      "shapes-simclr.yaml", "simclr-resnet10.yaml", "simclr.yaml",
    ] {
      // Every run evaluates its label-free signals at the last step; shapes-simclr.yaml
      // also has an online probe, here on the fixture's labeled folder.
      let onlineProbe =
        name == "shapes-simclr.yaml"
        ? [
          "--set", "eval.online_probe=\(dir.appendingPathComponent("fm/train").path)", "--set", "eval.labels_per_class=8",
          "--set", "eval.held_out_per_class=4",
        ] : []
      let r = try pretrain(
        [
          experiments.appendingPathComponent(name).path, "--set", "data.unlabeled=\(data)", "--set", "output=\(runs)",
          "--set", "train.batch_size=128", "--set", "train.steps=2",
        ] + onlineProbe)
      XCTAssertEqual(r.status, 0, r.err)
      XCTAssertTrue(r.err.contains("memory: about"), r.err)
      let stem = String(name.dropLast(5))
      let json =
        try JSONSerialization.jsonObject(
          with: Data(contentsOf: URL(fileURLWithPath: "\(runs)/\(stem)/pretrain.json"))) as! [String: Any]
      let estimate = try XCTUnwrap((json["memory"] as? [String: Any])?["total_bytes"] as? Double)
      let peak = try XCTUnwrap(json["peak_resident_bytes"] as? Double)
      XCTAssertEqual(
        estimate / peak, 1, accuracy: 0.25,
        "\(name): estimate \(estimate / 1e6) MB, peak \(peak / 1e6) MB; plan \(json["memory"] ?? "none")")
    }
  }

  /// A tensor allocation refused during training (here by an address-space limit, as
  /// when another process holds the memory the plan counted on) stops the run with the
  /// step, the size asked for and what is kept — exit status 1, not a crash. The limit
  /// lets the measuring steps (16 samples) through and not a step of 64 at width 32.
  func testAllocationFailureDuringTrainingIsAnError() throws {
    let path = try config()
    let exe = try pretextExecutable().path
    let wide =
      "--threads 1 --set backbone.width=32 --set train.batch_size=64 --set train.steps=2"
      + " --set train.checkpoint_every=1"
    func limited(_ args: String) throws -> (status: Int32, out: String, err: String) {
      try runProcess(
        URL(fileURLWithPath: "/bin/sh"), ["-c", "ulimit -v 700000; exec \(exe) pretrain \(path) \(wide) \(args)"])
    }
    let first = try limited("")
    XCTAssertEqual(first.status, 1, first.err)
    XCTAssertTrue(first.err.contains("memory: about"), first.err)
    XCTAssertTrue(
      first.err.contains("Error: step 0: out of memory: a tensor of "),
      "expected the step and the size in:\n\(first.err)")
    XCTAssertTrue(
      first.err.contains("could not be allocated; no checkpoint was saved yet; free some memory"), first.err)
    XCTAssertFalse(first.err.contains("Fatal error"), first.err)
    // Mid-run: the run trained (without the limit) to its checkpoint at step 1 and was
    // cut short there (its step-2 files removed); resumed under the limit, it stops at
    // step 1 and keeps that checkpoint, which a resume with memory back goes on from.
    let full = try runProcess(
      URL(fileURLWithPath: exe), ["pretrain", path] + wide.split(separator: " ").map(String.init))
    XCTAssertEqual(full.status, 0, full.err)
    let run = "\(runs)/tiny"
    for file in ["checkpoint-00000002.safetensors", "pretrain.json"] {
      try FileManager.default.removeItem(atPath: "\(run)/\(file)")
    }
    let resumed = try limited("--resume")
    XCTAssertEqual(resumed.status, 1, resumed.err)
    XCTAssertTrue(
      resumed.err.contains(
        "Error: step 1: out of memory: a tensor of "), "expected step 1 in:\n\(resumed.err)")
    XCTAssertTrue(
      resumed.err.contains(
        "could not be allocated; the last checkpoint, checkpoint-00000001.safetensors in \(run), is kept; free some memory"
      ), resumed.err)
    let again = try runProcess(
      URL(fileURLWithPath: exe), ["pretrain", path, "--resume"] + wide.split(separator: " ").map(String.init))
    XCTAssertEqual(again.status, 0, again.err)
    XCTAssertTrue(again.out.contains("done: 2 steps"), again.out)
  }

  /// Random values from the whole numeric range (±∞, NaN, 0, negatives, huge ones) at
  /// every numeric key, through `--dry-run`: each run ends with status 0, or 1 and an
  /// `Error:` line — never a signal. Seeded: the same values every time.
  func testRandomValuesAtEveryKeyNeverCrash() throws {
    var rng = SeededGenerator(seed: 22)  // KillResumeTests.swift: SplitMix64, the same draws every run
    let special = [
      ".inf", "-.inf", ".nan", "0", "-1", "1", "2", "1e30", "-1e30", "9223372036854775807", "1e-30", "0.5",
    ]
    func value() -> String {
      if rng.next() % 2 == 0 { return special[Int(rng.next() % UInt64(special.count))] }
      let magnitude = Double(Int(rng.next() % 40)) - 10
      let sign = rng.next() % 3 == 0 ? "-" : ""
      return sign + String(format: "%.3g", pow(10, magnitude) * Double(rng.next() % 1000) / 100)
    }
    let train =
      [
        "batch_size", "epochs", "steps", "minutes", "base_lr", "min_lr", "warmup_fraction", "weight_decay", "momentum",
        "clip_grad_norm", "ema_decay", "seed", "log_every", "checkpoint_every", "keep_checkpoints", "artifacts_every",
        "nan_retries", "nan_lr_factor",
      ].map { "train.\($0)" } + ["train.betas=[%v, 0.9]"]
    let backbone = ["image_size", "patch_size", "in_channels", "width"].map { "backbone.\($0)" }
    let data = ["data.decode_size"]
    let tasks: [(String, [String])] = [
      (
        "{name: simclr}",
        ["temperature", "projection_hidden", "projection_output", "flip", "color_jitter_p", "grayscale_p", "blur_p"]
          .map { "task.\($0)" } + [
            "task.crop_scale=[%v, 1]", "task.blur_sigma=[0.1, %v]", "task.color_jitter=[%v, 0, 0, 0]", "task.mean=[%v]",
            "task.std=[%v]",
          ]
      ),
      (
        "{name: relative-location, resize: 42, patch_size: 10, gap: 5, jitter: 1, patch_input_size: 10}",
        ["resize", "patch_size", "gap", "jitter", "patch_input_size", "grayscale_p", "head_hidden"].map { "task.\($0)" }
      ),
    ]
    let mae = try config("{name: mae, decoder_width: 32, decoder_depth: 1, decoder_heads: 2}", name: "mae.yaml")
    try String(contentsOfFile: mae).replacingOccurrences(
      of: "preset: resnet18-small, image_size: 28, in_channels: 1, width: 8",
      with: "preset: vit-cpu, image_size: 16, patch_size: 4, in_channels: 1, width: 48"
    ).write(toFile: mae, atomically: true, encoding: .utf8)
    var cases: [(String, String)] = []
    for (task, keys) in tasks {
      let path = try config(task, name: "p-\(cases.count).yaml")
      for key in train + backbone + data + keys { cases.append((path, key)) }
    }
    for key in ["task.mask_ratio", "task.decoder_width", "task.decoder_depth", "task.decoder_heads", "task.flip"]
      + backbone
    {
      cases.append((mae, key))
    }
    let start = Date()
    var outcomes = [Int32: Int]()
    for (path, key) in cases + cases {
      let v = value()
      let setting = key.contains("%v") ? key.replacingOccurrences(of: "%v", with: v) : "\(key)=\(v)"
      let r = try runPretext(["pretrain", path, "--dry-run", "--threads", "1", "--set", setting])
      outcomes[r.status, default: 0] += 1
      XCTAssertTrue(r.status == 0 || r.status == 1, "--set \(setting): status \(r.status) (a signal?)\n\(r.err)")
      if r.status == 1 {
        XCTAssertTrue(r.err.contains("Error: "), "--set \(setting): no Error: line in\n\(r.err)")
        XCTAssertFalse(r.err.contains("Fatal error"), "--set \(setting): \(r.err)")
      }
    }
    // The compare file's numeric keys, through `compare --dry-run` (one value each: a
    // refused value costs nothing, an accepted one a dry run of the experiment).
    _ = try config()
    let compare = dir.appendingPathComponent("c.yaml").path
    try """
    name: c
    output: \(runs)
    experiments: [exp.yaml]
    probe: {train: \(dir.appendingPathComponent("fm/train").path), test: \(dir.appendingPathComponent("fm/test").path)}
    """.write(toFile: compare, atomically: true, encoding: .utf8)
    let compareKeys =
      [
        "k", "temperature", "labels_per_class", "iterations", "epochs", "batch_size", "lr", "weight_decay",
        "concat_depths", "validation_fraction", "extraction_batch_size", "seed",
      ].map { "compare.probe.\($0)" } + [
        "compare.probe.label_fractions=[%v]", "compare.report.projection_points_per_class",
      ]
    for key in compareKeys {
      let v = value()
      let setting = key.contains("%v") ? key.replacingOccurrences(of: "%v", with: v) : "\(key)=\(v)"
      let r = try runPretext(["compare", compare, "--dry-run", "--threads", "1", "--set", setting])
      outcomes[r.status, default: 0] += 1
      XCTAssertTrue(r.status == 0 || r.status == 1, "--set \(setting): status \(r.status) (a signal?)\n\(r.err)")
      if r.status == 1 { XCTAssertTrue(r.err.contains("Error: "), "--set \(setting): no Error: line in\n\(r.err)") }
    }
    // Both outcomes occur: values reach the dry run's steps, and values are refused.
    XCTAssertGreaterThan(outcomes[0] ?? 0, 10, "\(outcomes)")
    XCTAssertGreaterThan(outcomes[1] ?? 0, 10, "\(outcomes)")
    XCTAssertFalse(FileManager.default.fileExists(atPath: runs), "dry runs write nothing")
    // A bound against a hang, not a speed check: 25–29 s measured here, machines of this
    // kind differ about 2× in speed, and another process may share the cores (×2 again).
    XCTAssertLessThan(Date().timeIntervalSince(start), 120, "\(2 * cases.count + compareKeys.count) dry runs")
  }
}
