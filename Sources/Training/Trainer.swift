import Autograd
import Backbones
import Foundation
import Support
import Synchronization
import NN
import Tasks
import Vision

/// One logged training step (a line of `metrics.jsonl`).
public struct StepRecord: Codable, Sendable {
  public var step: Int
  public var epoch: Double
  public var loss: Double
  public var metrics: [String: Double]
  public var learningRate: Double
  public var imagesPerSecond: Double
  public var elapsedSeconds: Double
  /// The global L2 norm of the step's gradient (averaged over the processes, before
  /// clipping); absent from logs written before it was recorded.
  public var gradientNorm: Double?
  /// The share of wall time since the previous record that the step waited for the
  /// loader's batch (0: data never held training back); absent from older logs.
  public var dataWait: Double?

  enum CodingKeys: String, CodingKey {
    case step, epoch, loss, metrics, learningRate = "lr", imagesPerSecond = "images_per_second"
    case elapsedSeconds = "elapsed_seconds", gradientNorm = "grad_norm", dataWait = "data_wait"
  }
}

/// A rollback after a non-finite loss or gradient (a line of `metrics.jsonl`, told apart
/// from step records by its `event` key).
public struct RollbackEvent: Codable, Sendable {
  public var event = "nan_rollback"
  /// The step whose loss or gradient was not finite.
  public var step: Int
  /// The checkpoint step training went back to.
  public var restoredStep: Int
  public var reason: String
  /// The factor on the scheduled learning rate from now on.
  public var learningRateFactor: Double
  /// Which rollback this is, of `retries` allowed.
  public var rollback: Int
  public var retries: Int

  public init(step: Int, restoredStep: Int, reason: String, learningRateFactor: Double, rollback: Int, retries: Int) {
    self.step = step
    self.restoredStep = restoredStep
    self.reason = reason
    self.learningRateFactor = learningRateFactor
    self.rollback = rollback
    self.retries = retries
  }

  enum CodingKeys: String, CodingKey {
    case event, step, restoredStep = "restored_step", reason, learningRateFactor = "lr_factor", rollback, retries
  }
}

/// What a finished (or stopped) run reports.
public struct TrainingSummary: Codable, Sendable {
  public var steps: Int
  public var totalSteps: Int
  public var finalLoss: Double
  public var seconds: Double
  public var imagesPerSecond: Double
  public var backbonePath: String
  public var resumedFromStep: Int?
  public var skippedImages: Int
  /// Seconds this session's steps waited for the loader, after its first batch (which
  /// also waits for the pipeline to start).
  public var dataWaitSeconds: Double

  enum CodingKeys: String, CodingKey {
    case steps, totalSteps = "total_steps", finalLoss = "final_loss", seconds, imagesPerSecond = "images_per_second"
    case backbonePath = "backbone_path", resumedFromStep = "resumed_from_step", skippedImages = "skipped_images"
    case dataWaitSeconds = "data_wait_seconds"
  }
}

/// The generic training loop: it asks the task for samples and losses and knows nothing
/// else about it. It owns the optimizer, the learning-rate schedule, logging,
/// checkpoints (full state for `resume`, and the backbone alone for the probe and for
/// PyTorch) and the task's periodic pictures.
public final class Trainer: @unchecked Sendable {
  public let task: any PretextTask
  public let backbone: any Backbone
  public let source: any ImageSource
  public let settings: TrainerSettings
  public let runDirectory: String
  /// The processes training together (data parallelism; see DataParallel.swift), or
  /// this process alone.
  public let group: any Communicator
  /// Called with each progress line (already formatted), on process 0 only. By default:
  /// on a terminal, one line updated in place; otherwise plain log lines.
  public var onProgress: (String) -> Void = Trainer.defaultProgress

  static let defaultProgress: @Sendable (String) -> Void = {
    let live = isatty(STDERR_FILENO) == 1
    let isStep = $0.hasPrefix("step ")
    let text = live && isStep ? "\r\u{1B}[K" + $0 : (live ? "\n" : "") + $0 + "\n"
    FileHandle.standardError.write(Data(text.utf8))
  }
  /// Set to stop after the current step (e.g. from a signal handler, on another thread).
  public var stopRequested: Bool {
    get { stopFlag.load(ordering: .relaxed) }
    set { stopFlag.store(newValue, ordering: .relaxed) }
  }
  private let stopFlag = Atomic<Bool>(false)

  let model = Module()
  let parameters: [OptimizedParameter]
  let optimizer: any Optimizer
  /// The exponential moving average of the backbone's weights (when `ema_decay` > 0).
  let average: WeightAverage?
  let gradients: GradientAverager

  /// `group`: the processes of a data-parallel run (each builds its own trainer with the
  /// same config); `settings.batchSize` is the global batch, split evenly among them.
  public init(
    task: any PretextTask, backbone: any Backbone, source: any ImageSource, settings: TrainerSettings, runDirectory: String,
    group: any Communicator = SingleProcess()
  ) throws {
    try settings.validate()
    guard source.count >= settings.batchSize else {
      throw TrainingError(
        "the dataset has \(source.count) images, fewer than one batch of \(settings.batchSize) (lower train.batch_size)")
    }
    guard settings.batchSize % group.size == 0 else {
      throw TrainingError(
        "train.batch_size \(settings.batchSize) (the global batch) cannot be split evenly among \(group.size) processes; "
          + "use a multiple of \(group.size)")
    }
    self.task = task
    self.backbone = backbone
    self.source = source
    self.settings = settings
    self.runDirectory = runDirectory
    self.group = group
    // One tree for names: backbone.* and heads.* (checkpoint and optimizer-state keys).
    model.register(child: "backbone", backbone)
    model.register(child: "heads", task.heads)
    if settings.syncBatchNorm {
      for case let (_, bn as BatchNorm) in model.namedModules() { bn.statisticsGroup = group }
    }
    parameters = model.optimizedParameters()
    gradients = GradientAverager(parameters)
    average = settings.emaDecay > 0 ? WeightAverage(backbone, decay: settings.emaDecay) : nil
    switch settings.optimizer {
    case "sgd": optimizer = SGD(parameters, momentum: settings.momentum, weightDecay: settings.weightDecay)
    case "lars": optimizer = LARS(parameters, momentum: settings.momentum, weightDecay: settings.weightDecay)
    default:
      optimizer = AdamW(
        parameters, beta1: settings.betas[0], beta2: settings.betas[1], weightDecay: settings.weightDecay)
    }
  }

  var stepsPerEpoch: Int { max(1, source.count / settings.batchSize) }

  /// The budget as steps and the schedule over them (TrainingPlan.swift).
  public var plan: TrainingPlan { TrainingPlan(settings: settings, stepsPerEpoch: stepsPerEpoch) }

  /// The clock of the budget and of the speed figures, in seconds (monotonic by default;
  /// tests set a simulated one). Read once per step.
  public var clock: @Sendable () -> Double = monotonicSeconds

  public var backbonePath: String { (runDirectory as NSString).appendingPathComponent("backbone.safetensors") }
  /// The averaged backbone (with `ema_decay`), beside `backbone.safetensors`.
  public var averagePath: String { (runDirectory as NSString).appendingPathComponent("backbone-ema.safetensors") }

  /// A full checkpoint (for `resume`) and the backbone files (for the probe and PyTorch),
  /// written by process 0 once every process agrees on the state.
  func saveCheckpoint(_ state: CheckpointState) throws {
    try agreeOnState(step: state.step)
    guard group.isLeader else { return }
    do {
      try Checkpoints.save(
        model: model, optimizer: optimizer, average: average, state: state, backbone: backbone, in: runDirectory,
        keep: settings.keepCheckpoints)
      try saveBackbone()
    } catch {
      // Writes are atomic: a failed one leaves the earlier files as they were.
      throw TrainingError(
        "step \(state.step): the checkpoint could not be saved (\(error)); the earlier checkpoints in \(runDirectory) "
          + "are intact: make room (or fix the folder), then continue with --resume")
    }
  }

  /// Writes the backbone (and its average) for the probe and for PyTorch.
  func saveBackbone() throws {
    try BackboneWeights.save(backbone, to: backbonePath, input: task.inputNormalization)
    if let average {
      let metadata = try BackboneWeights.metadata(config: backbone.config, input: task.inputNormalization)
      try SafeTensors(tensors: average.shadows, metadata: metadata).write(to: averagePath)
    }
  }

  /// Trains until the budget is spent (or `stopRequested`), resuming from the newest
  /// checkpoint in the run folder when `resume` is set. In a data-parallel run every
  /// process calls this; process 0 reads and writes the files.
  public func run(resume: Bool) throws -> TrainingSummary {
    if group.isLeader { try prepareRunFolder() }
    let plan = self.plan
    var state = CheckpointState(step: 0, totalSteps: plan.initialTotal, position: LoaderPosition(), elapsedSeconds: 0)
    if resume && group.isLeader {
      let (loaded, path) = try loadNewestUsableCheckpoint()
      state = loaded
      report("resuming from \(path) at step \(state.step) of \(plan.describeTotal(state.totalSteps))")
    }
    state = try synchronizeStart(state)
    let resumedFrom: Int? = resume ? state.step : nil
    if settings.steps > 0 && settings.minutes > 0 {
      report("budget: train.steps \(settings.steps) (train.minutes \(settings.minutes) is not used: steps come first)")
    }
    if plan.isTimed, let seconds = plan.seconds, state.elapsedSeconds >= seconds {
      state.totalSteps = state.step  // the time was spent before the resume
    }
    var loader = try makeLoader(startingAt: state.position)
    defer { loader.stop() }
    // What an allocation failure says (Autograd/AllocationFailure.swift).
    func keptAdvice(_ checkpoint: String?) -> String {
      guard let checkpoint else {
        return "no checkpoint was saved yet; free some memory (another process may hold it) or lower "
          + "train.batch_size, then start the run again"
      }
      // --resume needs the same config, so a lower batch means a new run.
      return "the last checkpoint, \((checkpoint as NSString).lastPathComponent) in \(runDirectory), is kept; "
        + "free some memory (another process may hold it), then continue with --resume "
        + "(or start a new run with a lower train.batch_size)"
    }
    AllocationFailure.setAdvice(keptAdvice(Checkpoints.list(in: runDirectory).last))
    defer { AllocationFailure.setAdvice(nil) }
    model.train()
    let log = try MetricsLog(
      directory: runDirectory, enabled: group.isLeader, resumedFrom: resumedFrom, events: state.rollbacks)
    // The state to roll back to after a non-finite loss or gradient: a copy of the last
    // checkpoint, kept in memory (only when rollbacks are enabled).
    var lastGood = settings.nanRetries > 0 ? Snapshot(tensors: stateTensors(), state: state) : nil
    let start = clock()
    let elapsedBefore = state.elapsedSeconds
    // Forward and backward passes run by this process (rolled-back ones included): the
    // denominator of its mean step time.
    var passes = 0
    var now = start
    var imagesSinceLog = 0
    var lastLog = start
    var lastLoss = Double.nan
    var imagesTotal = 0
    var lastBatch: TaskBatch? = nil
    // Time spent waiting for batches, on the machine's own clock (the injected `clock`
    // is read once per step, for the budget).
    var waitTotal = 0.0
    var waitSinceLog = 0.0
    var wallSinceLog = DispatchTime.now().uptimeNanoseconds
    // A stop (Ctrl-C, SIGTERM) requested on any process stops them all before a step.
    while state.step < state.totalSteps && !group.any(stopRequested) {
      AllocationFailure.setStep(state.step)
      let waitStart = DispatchTime.now().uptimeNanoseconds
      let (position, batch) = try loader.next()
      if passes > 0 {
        let waited = Double(DispatchTime.now().uptimeNanoseconds - waitStart) / 1e9
        waitTotal += waited
        waitSinceLog += waited
      }
      let (loss, metrics, fault) = try lossAndGradients(batch)
      passes += 1
      now = clock()
      let elapsed = elapsedBefore + (now - start)
      let secondsPerStep = (now - start) / Double(passes)
      if let fault {
        guard let snapshot = lastGood, state.rollbacks < settings.nanRetries else {
          let retries = settings.nanRetries > 0 ? " after \(state.rollbacks) rollback(s)" : ""
          throw TrainingError(
            "step \(state.step): \(fault)\(retries); the last checkpoint in \(runDirectory) is kept "
              + "(lower base_lr, enable clip_grad_norm, or set nan_retries to roll back and retry)")
        }
        // Back to the last checkpoint, with a lower learning rate from there on; the
        // rollback count and the factor are not rolled back (they are saved with the
        // next checkpoint, so a resumed run continues with them). Every process sees
        // the same (averaged) loss and gradients, so all roll back together. A minutes
        // budget keeps counting the time of the abandoned steps.
        let failedStep = state.step
        try restore(snapshot)
        state.step = snapshot.state.step
        state.position = snapshot.state.position
        state.rollbacks += 1
        state.learningRateFactor *= settings.nanLearningRateFactor
        loader.stop()
        loader = try makeLoader(startingAt: state.position)
        // The steps after the checkpoint are run again: their records go, the events stay.
        try log.truncate(after: snapshot.state.step, events: state.rollbacks - 1)
        try log.append(
          RollbackEvent(
            step: failedStep, restoredStep: state.step, reason: fault, learningRateFactor: state.learningRateFactor,
            rollback: state.rollbacks, retries: settings.nanRetries))
        report(
          "step \(failedStep): \(fault); rolled back to step \(state.step) with the learning rate ×"
            + "\(state.learningRateFactor) (rollback \(state.rollbacks) of \(settings.nanRetries))")
        continue
      }
      // The plan once this step is done. Process 0's plan is every process's, so that
      // all take the same steps.
      if plan.isTimed {
        state.totalSteps = group.broadcast(
          plan.totalSteps(step: state.step + 1, elapsedSeconds: elapsed, secondsPerStep: secondsPerStep), root: 0)
      }
      let rate = plan.schedule(totalSteps: state.totalSteps).rate(at: state.step) * state.learningRateFactor
      let norm = gradientNorm(parameters)
      if settings.clipGradientNorm > 0 { clipGradientNorm(parameters, maxNorm: settings.clipGradientNorm) }
      optimizer.step(lr: Float(rate))
      average?.update()
      state.step += 1
      state.position = LoaderPosition(epoch: position.epoch, batch: position.batch + 1)
      if state.position.batch >= loader.batchesPerEpoch { state.position = LoaderPosition(epoch: position.epoch + 1) }
      lastLoss = loss
      lastBatch = batch
      // Images of the global batch (every process's slice).
      imagesSinceLog += batch.imageCount * group.size
      imagesTotal += batch.imageCount * group.size
      if state.step % settings.logEvery == 0 || state.step == state.totalSteps {
        let speed = Double(imagesSinceLog) / max(1e-9, now - lastLog)
        let record = StepRecord(
          step: state.step, epoch: Double(state.step) / Double(stepsPerEpoch), loss: loss,
          metrics: Dictionary(metrics.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a }),
          learningRate: rate, imagesPerSecond: speed, elapsedSeconds: elapsed, gradientNorm: norm,
          dataWait: waitSinceLog / max(1e-9, Double(DispatchTime.now().uptimeNanoseconds - wallSinceLog) / 1e9))
        try log.append(record)
        let left = plan.secondsLeft(
          step: state.step, totalSteps: state.totalSteps, elapsedSeconds: elapsed, secondsPerStep: secondsPerStep)
        report(progressLine(record, total: plan.describeTotal(state.totalSteps), secondsLeft: left))
        imagesSinceLog = 0
        lastLog = now
        waitSinceLog = 0
        wallSinceLog = DispatchTime.now().uptimeNanoseconds
      }
      if state.step % settings.checkpointEvery == 0 && state.step < state.totalSteps {
        state.elapsedSeconds = elapsed
        try saveCheckpoint(state)
        AllocationFailure.setAdvice(keptAdvice(Checkpoints.path(step: state.step, in: runDirectory)))
        if lastGood != nil { lastGood = Snapshot(tensors: stateTensors(), state: state) }
      }
      if settings.artifactsEvery > 0 && state.step % settings.artifactsEvery == 0 && group.isLeader {
        _ = try task.writeArtifacts(batch, backbone: backbone, directory: runDirectory, step: state.step)
      }
    }
    state.elapsedSeconds = elapsedBefore + (now - start)
    try saveCheckpoint(state)
    if let lastBatch, group.isLeader {
      _ = try task.writeArtifacts(lastBatch, backbone: backbone, directory: runDirectory, step: state.step)
    }
    return TrainingSummary(
      steps: state.step, totalSteps: state.totalSteps, finalLoss: lastLoss, seconds: state.elapsedSeconds,
      imagesPerSecond: Double(imagesTotal) / max(now - start, 1e-9), backbonePath: backbonePath,
      resumedFromStep: resumedFrom, skippedImages: loader.skipped.count, dataWaitSeconds: waitTotal)
  }

  /// Bytes of the gradient buffer averaged over the processes at every step (trainable
  /// parameters × 4, plus a flag per parameter tensor).
  public var gradientBytes: Int { gradients.bytes }

  /// A progress line, shown by process 0 only.
  func report(_ line: String) {
    if group.isLeader { onProgress(line) }
  }

  /// This process's loader: its slice of every global batch, collated as a slice of a
  /// batch spread over `group`.
  func makeLoader(startingAt position: LoaderPosition) throws -> DataLoader<TaskSample, TaskBatch> {
    try DataLoader<TaskSample, TaskBatch>(
      source: source,
      options: LoaderOptions(
        batchSize: settings.batchSize, seed: settings.seed, strict: source.isStrict, shard: group.rank,
        shards: group.size),
      startingAt: position,
      prepare: { [task] image, rng in try task.sample(image, using: &rng) },
      collate: { [group] in try TaskBatch.collate($0, group: group) })
  }

  /// The forward and backward pass of one batch: the loss and metrics of the global
  /// batch (means over the processes' slices) and the parameters' gradients (averaged
  /// over the processes), or (`fault`) what was not finite — the loss, or the first
  /// parameter whose gradient has a NaN or infinite value. Every process gets the same
  /// values, so all take the same decision.
  func lossAndGradients(_ batch: TaskBatch) throws -> (
    loss: Double, metrics: [(name: String, value: Double)], fault: String?
  ) {
    let output = try task.loss(batch, backbone: backbone)
    let local = [Double(try output.loss.item())] + output.metrics.map(\.value)
    let means = group.allReduceSum(local).map { $0 / Double(group.size) }
    let loss = means[0]
    let metrics = zip(output.metrics, means.dropFirst()).map { (name: $0.0.name, value: $0.1) }
    guard loss.isFinite else { return (loss, metrics, "the loss is \(loss)") }
    model.zeroGrad()
    try output.loss.backward()
    gradients.average(over: group)
    if let bad = firstNonFinite(parameters.compactMap { p in p.tensor.grad.map { (p.name, $0) } }) {
      return (loss, metrics, "the gradient of \(bad.name) has \(bad.report)")
    }
    return (loss, metrics, nil)
  }

  // MARK: State and rollback

  /// Every tensor a checkpoint holds, in a fixed order: the model's parameters and
  /// buffers, the optimizer's state and the averaged weights.
  func stateTensors() -> [Tensor] {
    model.stateDict().map(\.tensor) + optimizer.state().map(\.tensor) + (average?.shadows.map(\.tensor) ?? [])
  }

  /// A copy of the training state in memory.
  struct Snapshot {
    let tensors: [Tensor]
    let state: CheckpointState
    init(tensors: [Tensor], state: CheckpointState) {
      self.tensors = tensors.map { $0.copy() }
      self.state = state
    }
  }

  func restore(_ snapshot: Snapshot) throws {
    for (t, saved) in zip(stateTensors(), snapshot.tensors) { try t.assign(saved) }
    model.zeroGrad()
  }

  // MARK: Run folder

  /// Creates the run folder and fails early (before any training) when it cannot be
  /// written or has too little room for a checkpoint; removes temporary files of writes
  /// cut short by a crash or a kill (the files they were replacing are intact: writes
  /// are atomic).
  public func prepareRunFolder() throws {
    if runFolderReady { return }
    try makeFolders(runDirectory)
    try checkWritable()
    try checkFreeSpace()
    for name in (try? FileManager.default.contentsOfDirectory(atPath: runDirectory)) ?? []
    where name.hasPrefix(".") && name.contains(".tmp-") {
      try? FileManager.default.removeItem(atPath: (runDirectory as NSString).appendingPathComponent(name))
    }
    runFolderReady = true
  }
  private var runFolderReady = false

  /// `prepareRunFolder`'s checks without writing anything (`--dry-run`): the folder, or
  /// the nearest folder above it that exists, must be a writable folder with room for a
  /// checkpoint.
  public func checkRunFolderWithoutWriting() throws {
    var existing = runDirectory
    var isFolder: ObjCBool = false
    while !FileManager.default.fileExists(atPath: existing, isDirectory: &isFolder) {
      let parent = (existing as NSString).deletingLastPathComponent
      if parent.isEmpty || parent == existing {
        existing = "."
        break
      }
      existing = parent
    }
    _ = FileManager.default.fileExists(atPath: existing, isDirectory: &isFolder)
    guard isFolder.boolValue else {
      throw TrainingError("cannot create the run folder \(runDirectory): a file has the name \(existing)")
    }
    guard access(existing, W_OK) == 0 else {
      let reason = String(cString: strerror(errno))
      throw TrainingError(
        existing == runDirectory
          ? "cannot write to the run folder \(runDirectory): \(reason)"
          : "cannot create the run folder \(runDirectory): \(existing): \(reason)")
    }
    let (checkpoint, backboneFiles) = fileSizes()
    let whole = (settings.keepCheckpoints + 1) * checkpoint + 2 * backboneFiles
    if let warning = try Self.checkFreeSpace(
      available: Self.availableBytes(at: existing), oneSave: checkpoint + backboneFiles, wholeRun: whole,
      folder: runDirectory)
    {
      report(warning)
    }
  }

  /// Seconds per step at this machine's speed: `steps` real steps (forward, backward,
  /// update) on batches from the data, after one untimed step. They change the model, so
  /// this is for a trainer that is not trained afterwards (`--dry-run`); nothing is written.
  public func measureSecondsPerStep(steps: Int = 2) throws -> Double {
    let loader = try makeLoader(startingAt: LoaderPosition())
    defer { loader.stop() }
    model.train()
    var times: [Double] = []
    for i in 0...steps {
      let start = clock()
      let (_, batch) = try loader.next()
      _ = try lossAndGradients(batch)
      optimizer.step(lr: 0)
      if i > 0 { times.append(clock() - start) }
    }
    return times.sorted()[times.count / 2]
  }

  /// Fails early (before any training) when the run folder cannot be written.
  func checkWritable() throws {
    let probe = (runDirectory as NSString).appendingPathComponent(".write-test-\(getpid())")
    let fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0, Foundation.write(fd, "ok", 2) == 2 else {
      let reason = String(cString: strerror(errno))
      if fd >= 0 {
        close(fd)
        unlink(probe)
      }
      throw TrainingError("cannot write to the run folder \(runDirectory): \(reason)")
    }
    close(fd)
    try? FileManager.default.removeItem(atPath: probe)
  }

  /// Bytes of a checkpoint file and of the backbone file(s) written beside it.
  public func fileSizes() -> (checkpoint: Int, backboneFiles: Int) {
    let headers = 1 << 16  // JSON headers, generously
    let state = stateTensors().reduce(0) { $0 + $1.count }
    return (4 * state + headers, (4 * backbone.parameterCount + headers) * (average == nil ? 1 : 2))
  }

  /// Free bytes for this user on the file system holding `path` (nil if unknown).
  static func availableBytes(at path: String) -> Int? {
    var info = statvfs()
    guard statvfs(path, &info) == 0 else { return nil }
    return Int(info.f_bavail) * Int(info.f_frsize)
  }

  /// Checks the room in the run folder: one save (a checkpoint and the backbone files,
  /// each written whole before the file it replaces goes) must fit, or training would
  /// only fail later; less than the whole run needs (`keep_checkpoints` + 1 checkpoints
  /// at the peak, beside the files already there) gives a warning.
  func checkFreeSpace() throws {
    let (checkpoint, backboneFiles) = fileSizes()
    let existing = (Checkpoints.list(in: runDirectory) + [backbonePath, averagePath]).reduce(0) {
      $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0)
    }
    let whole = (settings.keepCheckpoints + 1) * checkpoint + 2 * backboneFiles - existing
    if let warning = try Self.checkFreeSpace(
      available: Self.availableBytes(at: runDirectory), oneSave: checkpoint + backboneFiles, wholeRun: whole,
      folder: runDirectory)
    {
      report(warning)
    }
  }

  /// Throws when `available` bytes cannot hold one save; returns a warning when they
  /// cannot hold the whole run.
  public static func checkFreeSpace(available: Int?, oneSave: Int, wholeRun: Int, folder: String) throws -> String? {
    guard let available else { return nil }
    func mb(_ n: Int) -> String { String(format: "%.1f MB", Double(n) / 1e6) }
    if available < oneSave {
      throw TrainingError(
        "the run folder \(folder) has \(mb(available)) free, less than the \(mb(oneSave)) a checkpoint needs; "
          + "free some space or set `output` to another disk")
    }
    if available < wholeRun {
      return "warning: the run folder \(folder) has \(mb(available)) free, and this run's checkpoints may need up to "
        + "\(mb(wholeRun)) (lower train.keep_checkpoints, or free some space)"
    }
    return nil
  }

  /// The newest checkpoint that loads. A damaged one (truncated, or failing its
  /// checksum) is renamed `*.damaged` (kept for inspection, out of the checkpoint list)
  /// and the one before it is tried.
  func loadNewestUsableCheckpoint() throws -> (CheckpointState, String) {
    let candidates = Checkpoints.list(in: runDirectory)
    guard !candidates.isEmpty else {
      throw TrainingError("--resume: no checkpoint in \(runDirectory) (start without --resume)")
    }
    var damaged: [String] = []
    for path in candidates.reversed() {
      let file: SafeTensors
      do {
        file = try SafeTensors.read(path: path)
      } catch {
        let aside = path + ".damaged"
        try? FileManager.default.removeItem(atPath: aside)
        try FileManager.default.moveItem(atPath: path, toPath: aside)
        let next = path == candidates.first ? "" : ", trying the checkpoint before it"
        report("\(error); renamed to \((aside as NSString).lastPathComponent)\(next)")
        damaged.append((path as NSString).lastPathComponent)
        continue
      }
      let state = try Checkpoints.restore(file, from: path, model: model, optimizer: optimizer, average: average)
      return (state, path)
    }
    throw TrainingError(
      "--resume: every checkpoint in \(runDirectory) is damaged (\(damaged.joined(separator: ", ")), renamed *.damaged); "
        + "start the run again without --resume")
  }

  /// `step 6/120 | epoch 0.11 | loss 4.2900 | … | lr 1.87e-05 | 628 img/s | ETA 12s`;
  /// `total` is `TrainingPlan.describeTotal`'s (`~120` for a minutes budget).
  func progressLine(_ r: StepRecord, total: String, secondsLeft: Double) -> String {
    let metrics = r.metrics.keys.sorted().map { String(format: "%@ %.3f", $0, r.metrics[$0]!) }.joined(separator: " | ")
    // Worth a word only when data holds training back.
    let wait = (r.dataWait ?? 0) >= 0.05 ? String(format: " | data wait %.0f%%", 100 * r.dataWait!) : ""
    return String(
      format: "step %ld/%@ | epoch %.2f | loss %.4f%@ | lr %.2e | %.0f img/s%@ | ETA %@",
      r.step, total, r.epoch, r.loss, metrics.isEmpty ? "" : " | " + metrics, r.learningRate, r.imagesPerSecond, wait,
      formatDuration(secondsLeft))
  }
}

/// `mkdir -p`, failing with the system's reason ("Permission denied") and the folder
/// that could not be made.
func makeFolders(_ path: String) throws {
  var isFolder: ObjCBool = false
  if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
    if isFolder.boolValue { return }
    throw TrainingError("cannot create the run folder \(path): a file has that name")
  }
  let parent = (path as NSString).deletingLastPathComponent
  if !parent.isEmpty && parent != path { try makeFolders(parent) }
  if mkdir(path, 0o755) != 0 && errno != EEXIST {
    throw TrainingError("cannot create the run folder \(path): \(String(cString: strerror(errno)))")
  }
}

/// `12s`, `3m5s`, `2h7m`; `?` for a non-number or a negative value.
public func formatDuration(_ s: Double) -> String {
  guard s.isFinite, s >= 0 else { return "?" }
  let t = Int(saturating: s)
  return t >= 3600 ? "\(t / 3600)h\(t % 3600 / 60)m" : t >= 60 ? "\(t / 60)m\(t % 60)s" : "\(t)s"
}

/// Keeps the step records up to `step` (the checkpoint resumed or rolled back to: the
/// steps after it are run again) and the first `events` rollback events (those the
/// training state counts); drops the rest and any line cut short by a crash.
func truncateMetrics(_ url: URL, after step: Int, events: Int) throws {
  struct Line: Decodable {
    let step: Int
    let event: String?
  }
  guard let data = readWholeFile(url.path) else { return }
  var kept: [Substring] = []
  var eventsKept = 0
  for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
    guard let record = try? JSONDecoder().decode(Line.self, from: Data(line.utf8)) else { continue }
    if record.event != nil {
      if eventsKept < events {
        kept.append(line)
        eventsKept += 1
      }
    } else if record.step <= step {
      kept.append(line)
    }
  }
  let text = kept.map { $0 + "\n" }.joined()
  try writeAtomically(Array(text.utf8), to: url.path)
}

/// `metrics.jsonl` of a run: one JSON object per line (step records, rollback events),
/// written by process 0 only (`enabled`).
final class MetricsLog {
  let url: URL
  private var file: FileHandle?

  /// Opens the log: emptied for a new run; for a resumed one, cut back to the
  /// checkpoint (`truncateMetrics`).
  init(directory: String, enabled: Bool, resumedFrom: Int?, events: Int) throws {
    url = URL(fileURLWithPath: (directory as NSString).appendingPathComponent("metrics.jsonl"))
    guard enabled else { return }
    if let resumedFrom { try truncateMetrics(url, after: resumedFrom, events: events) }
    file = try openAppending(url, truncate: resumedFrom == nil)
  }

  deinit { try? file?.close() }

  func append<T: Encodable>(_ line: T) throws {
    try file?.write(contentsOf: JSONEncoder.sortedKeys.encode(line) + Data("\n".utf8))
  }

  /// Keeps the steps up to `step` and the first `events` events (see `truncateMetrics`).
  func truncate(after step: Int, events: Int) throws {
    guard let open = file else { return }
    try open.close()
    try truncateMetrics(url, after: step, events: events)
    file = try openAppending(url, truncate: false)
  }
}

func openAppending(_ url: URL, truncate: Bool) throws -> FileHandle {
  if truncate || !FileManager.default.fileExists(atPath: url.path) {
    guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
      throw TrainingError("cannot create \(url.path)")
    }
  }
  let h = try FileHandle(forWritingTo: url)
  try h.seekToEnd()
  return h
}
