import Autograd
import Backbones
import Foundation
import Support
import Synchronization
import NN
import Optimization
import Tasks
import Vision

/// The generic training loop: it asks the task for samples and losses and knows nothing
/// else about it. It owns the optimizer, the learning-rate schedule, logging,
/// checkpoints (full state for `resume`, and the backbone alone for the probe and for
/// PyTorch) and the task's periodic pictures.
public final class Trainer: @unchecked Sendable {
  public let task: any PretextTask
  public let backbone: any Backbone
  public let source: any ImageSource
  public let settings: TrainerSettings
  public let folder: RunFolder
  public var runDirectory: String { folder.path }
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
  let average: MovingAverage?
  let gradients: GradientAverager
  /// The online probe and label-free signals, when the config asks for them.
  public let monitor: (any TrainingMonitor)?

  /// `group`: the processes of a data-parallel run (each builds its own trainer with the
  /// same config); `settings.batchSize` is the global batch, split evenly among them.
  /// `monitor`: evaluation during training (TrainingMonitor.swift).
  public init(
    task: any PretextTask, backbone: any Backbone, source: any ImageSource, settings: TrainerSettings, runDirectory: String,
    group: any Communicator = SingleProcess(), monitor: (any TrainingMonitor)? = nil
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
    self.folder = RunFolder(runDirectory)
    self.group = group
    // One tree for names: backbone.* and heads.* (checkpoint and optimizer-state keys).
    model.register(child: "backbone", backbone)
    model.register(child: "heads", task.heads)
    // The monitor's head is trained by the same optimizer, on detached features.
    if let monitor { model.register(child: "monitor", monitor.module) }
    self.monitor = monitor
    if settings.syncBatchNorm {
      for case let (_, bn as BatchNorm) in model.namedModules() { bn.statisticsGroup = group }
    }
    // The monitor's head follows the run's schedule, scaled to its own peak: a linear head
    // on standardized features wants a far larger step than a backbone under AdamW.
    let peak = TrainingPlan(settings: settings, stepsPerEpoch: 1).peakLearningRate
    parameters = model.optimizedParameters().map { p in
      guard let monitor, p.name.hasPrefix("monitor.") else { return p }
      var scaled = p
      scaled.learningRateScale = Float(monitor.peakLearningRate(optimizer: settings.optimizer) / peak)
      return scaled
    }
    gradients = GradientAverager(parameters)
    average = settings.emaDecay > 0 ? MovingAverage(of: backbone) : nil
    optimizer = (OptimizerKind(rawValue: settings.optimizer) ?? .adamw).make(
      parameters, momentum: settings.momentum, betas: settings.betas, weightDecay: settings.weightDecay)
  }

  var stepsPerEpoch: Int { max(1, source.count / settings.batchSize) }

  /// The budget as steps and the schedule over them (TrainingPlan.swift).
  public var plan: TrainingPlan { TrainingPlan(settings: settings, stepsPerEpoch: stepsPerEpoch) }

  /// The clock of the budget and of the speed figures, in seconds (monotonic by default;
  /// tests set a simulated one). Read once per step.
  public var clock: @Sendable () -> Double = monotonicSeconds

  public var backbonePath: String { folder.backbone }
  /// The averaged backbone (with `ema_decay`), beside `backbone.safetensors`.
  public var averagePath: String { folder.backboneAverage }

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
      try SafeTensors(tensors: average.averages, metadata: metadata).write(to: averagePath)
    }
  }

  /// Trains until the budget is spent (or `stopRequested`), resuming from the newest
  /// checkpoint in the run folder when `resume` is set. In a data-parallel run every
  /// process calls this; process 0 reads and writes the files.
  public func run(resume: Bool) throws -> TrainingSummary {
    if group.isLeader { try prepareRunFolder() }
    let plan = self.plan
    var state = try startingState(resume: resume)
    let resumedFrom: Int? = resume ? state.step : nil
    var loader = try makeLoader(startingAt: state.position)
    defer { loader.stop() }
    AllocationFailure.setAdvice(allocationAdvice(keeping: folder.checkpoints.last))
    defer { AllocationFailure.setAdvice(nil) }
    model.train()
    let log = try MetricsLog(
      directory: runDirectory, enabled: group.isLeader, resumedFrom: resumedFrom, events: state.rollbacks)
    // The state to roll back to after a non-finite loss or gradient: a copy of the last
    // checkpoint, kept in memory (only when rollbacks are enabled).
    var lastGood = settings.nanRetries > 0 ? Snapshot(tensors: stateTensors(), state: state) : nil
    var meter = StepMeter(start: clock(), elapsedBefore: state.elapsedSeconds)
    var lastLoss = Double.nan
    var lastBatch: TaskBatch? = nil
    // A stop (Ctrl-C, SIGTERM) requested on any process stops them all before a step.
    while state.step < state.totalSteps && !group.any(stopRequested) {
      AllocationFailure.setStep(state.step)
      let (position, batch) = try meter.waitingForData { try loader.next() }
      let (loss, metrics, fault) = try lossAndGradients(batch, step: state.step)
      meter.passDone(at: clock())
      if let fault {
        guard let snapshot = lastGood, state.rollbacks < settings.nanRetries else {
          let retries = settings.nanRetries > 0 ? " after \(state.rollbacks) rollback(s)" : ""
          throw TrainingError(
            "step \(state.step): \(fault)\(retries); the last checkpoint in \(runDirectory) is kept "
              + "(lower base_lr, enable clip_grad_norm, or set nan_retries to roll back and retry)")
        }
        try rollBack(to: snapshot, after: fault, state: &state, log: log)
        loader.stop()
        loader = try makeLoader(startingAt: state.position)
        continue
      }
      // The plan once this step is done. Process 0's plan is every process's, so that
      // all take the same steps.
      if plan.isTimed {
        state.totalSteps = group.broadcast(
          plan.totalSteps(step: state.step + 1, elapsedSeconds: meter.elapsed, secondsPerStep: meter.secondsPerStep),
          root: 0)
      }
      let rate = plan.schedule(totalSteps: state.totalSteps).rate(at: state.step) * state.learningRateFactor
      let norm = gradientNorm(parameters)
      if settings.clipGradientNorm > 0 { clipGradientNorm(parameters, maxNorm: settings.clipGradientNorm) }
      optimizer.step(lr: Float(rate))
      average?.update(momentum: settings.emaDecay)
      state.step += 1
      // After the step, from the run state alone (saved in checkpoints): a resumed or
      // rolled-back run gives the task the same progress.
      try task.afterStep(progress(state))
      state.position = LoaderPosition(epoch: position.epoch, batch: position.batch + 1)
      if state.position.batch >= loader.batchesPerEpoch { state.position = LoaderPosition(epoch: position.epoch + 1) }
      lastLoss = loss
      lastBatch = batch
      // Images of the global batch (every process's slice).
      meter.stepDone(images: batch.imageCount * group.size)
      let evaluation = try evaluate(after: state)
      if state.step % settings.logEvery == 0 || state.step == state.totalSteps || !evaluation.isEmpty {
        let record = meter.record(
          step: state.step, epoch: progress(state).epoch, loss: loss, metrics: metrics + evaluation, learningRate: rate,
          gradientNorm: norm)
        try log.append(record)
        let left = plan.secondsLeft(
          step: state.step, totalSteps: state.totalSteps, elapsedSeconds: meter.elapsed,
          secondsPerStep: meter.secondsPerStep)
        report(progressLine(record, total: plan.describeTotal(state.totalSteps), secondsLeft: left))
      }
      if state.step % settings.checkpointEvery == 0 && state.step < state.totalSteps {
        state.elapsedSeconds = meter.elapsed
        try saveCheckpoint(state)
        AllocationFailure.setAdvice(allocationAdvice(keeping: folder.checkpoint(step: state.step)))
        if lastGood != nil { lastGood = Snapshot(tensors: stateTensors(), state: state) }
      }
      if settings.artifactsEvery > 0 && state.step % settings.artifactsEvery == 0 && group.isLeader {
        _ = try task.writeArtifacts(batch, backbone: backbone, directory: runDirectory, step: state.step)
      }
    }
    state.elapsedSeconds = meter.elapsed
    try saveCheckpoint(state)
    if let lastBatch, group.isLeader {
      _ = try task.writeArtifacts(lastBatch, backbone: backbone, directory: runDirectory, step: state.step)
    }
    return TrainingSummary(
      steps: state.step, totalSteps: state.totalSteps, finalLoss: lastLoss, seconds: state.elapsedSeconds,
      imagesPerSecond: meter.imagesPerSecond, backbonePath: backbonePath, resumedFromStep: resumedFrom,
      skippedImages: loader.skipped.count, dataWaitSeconds: meter.waitTotal)
  }

  /// The run state training starts from: step 0, or (`resume`) the newest usable
  /// checkpoint's, the same on every process.
  func startingState(resume: Bool) throws -> CheckpointState {
    let plan = self.plan
    var state = CheckpointState(step: 0, totalSteps: plan.initialTotal, position: LoaderPosition(), elapsedSeconds: 0)
    if resume && group.isLeader {
      let (loaded, path) = try loadNewestUsableCheckpoint()
      state = loaded
      report("resuming from \(path) at step \(state.step) of \(plan.describeTotal(state.totalSteps))")
    }
    state = try synchronizeStart(state)
    if settings.steps > 0 && settings.minutes > 0 {
      report("budget: train.steps \(settings.steps) (train.minutes \(settings.minutes) is not used: steps come first)")
    }
    if plan.isTimed, let seconds = plan.seconds, state.elapsedSeconds >= seconds {
      state.totalSteps = state.step  // the time was spent before the resume
    }
    return state
  }

  /// The monitor's metrics after the step `state` ends, every `monitor.every` steps and at
  /// the last one (process 0 only; empty otherwise). Its warnings are shown at once.
  func evaluate(after state: CheckpointState) throws -> [(name: String, value: Double)] {
    guard let monitor, group.isLeader, monitor.every > 0,
      state.step % monitor.every == 0 || state.step == state.totalSteps
    else { return [] }
    let (metrics, warnings) = try monitor.evaluate(step: state.step, backbone: backbone)
    for warning in warnings { report("step \(state.step): warning: \(warning)") }
    return metrics
  }

  /// Where training stands, as the task sees it (`PretextTask.afterStep`).
  func progress(_ state: CheckpointState) -> TrainingProgress {
    TrainingProgress(step: state.step, totalSteps: state.totalSteps, stepsPerEpoch: stepsPerEpoch)
  }

  /// Back to the last checkpoint after a non-finite loss or gradient at `state.step`,
  /// with a lower learning rate from there on. The rollback count and the factor are not
  /// rolled back (they are saved with the next checkpoint, so a resumed run continues
  /// with them). Every process sees the same (averaged) loss and gradients, so all roll
  /// back together. A minutes budget keeps counting the time of the abandoned steps.
  func rollBack(to snapshot: Snapshot, after fault: String, state: inout CheckpointState, log: MetricsLog) throws {
    let failedStep = state.step
    try restore(snapshot)
    state.step = snapshot.state.step
    state.position = snapshot.state.position
    state.rollbacks += 1
    state.learningRateFactor *= settings.nanLearningRateFactor
    // The steps after the checkpoint are run again: their records go, the events stay.
    try log.truncate(after: snapshot.state.step, events: state.rollbacks - 1)
    try log.append(
      RollbackEvent(
        step: failedStep, restoredStep: state.step, reason: fault, learningRateFactor: state.learningRateFactor,
        rollback: state.rollbacks, retries: settings.nanRetries))
    report(
      "step \(failedStep): \(fault); rolled back to step \(state.step) with the learning rate ×"
        + "\(state.learningRateFactor) (rollback \(state.rollbacks) of \(settings.nanRetries))")
  }

  /// What an allocation failure says (Autograd/AllocationFailure.swift), given the last
  /// checkpoint kept.
  func allocationAdvice(keeping checkpoint: String?) -> String {
    guard let checkpoint else {
      return "no checkpoint was saved yet; free some memory (another process may hold it) or lower "
        + "train.batch_size, then start the run again"
    }
    // --resume needs the same config, so a lower batch means a new run.
    return "the last checkpoint, \((checkpoint as NSString).lastPathComponent) in \(runDirectory), is kept; "
      + "free some memory (another process may hold it), then continue with --resume "
      + "(or start a new run with a lower train.batch_size)"
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
  /// values, so all take the same decision. The monitor's loss at `step` (when it has
  /// one) is logged as the metric `online_probe_loss` and back-propagated with the task's;
  /// it reaches the monitor's head only.
  func lossAndGradients(_ batch: TaskBatch, step: Int) throws -> (
    loss: Double, metrics: [(name: String, value: Double)], fault: String?
  ) {
    let monitorLoss = try monitor?.loss(step: step, backbone: backbone, group: group)
    var output = try task.loss(batch, backbone: backbone)
    var total = output.loss
    if let monitorLoss {
      output.metrics.append((name: "online_probe_loss", value: Double(try monitorLoss.item())))
      total = try total + monitorLoss
    }
    let local = [Double(try output.loss.item())] + output.metrics.map(\.value)
    let means = group.allReduceSum(local).map { $0 / Double(group.size) }
    let loss = means[0]
    let metrics = zip(output.metrics, means.dropFirst()).map { (name: $0.0.name, value: $0.1) }
    guard loss.isFinite else { return (loss, metrics, "the loss is \(loss)") }
    model.zeroGrad()
    try total.backward()
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
    model.stateDict().map(\.tensor) + optimizer.state().map(\.tensor) + (average?.averages.map(\.tensor) ?? [])
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

  /// Creates the run folder and checks it before any training (RunFolder.prepare).
  public func prepareRunFolder() throws {
    if runFolderReady { return }
    if let warning = try folder.prepare(fileSizes(), keep: settings.keepCheckpoints) { report(warning) }
    runFolderReady = true
  }
  private var runFolderReady = false

  /// `prepareRunFolder`'s checks without writing anything (`--dry-run`).
  public func checkRunFolderWithoutWriting() throws {
    if let warning = try folder.checkWithoutWriting(fileSizes(), keep: settings.keepCheckpoints) { report(warning) }
  }

  /// Bytes of a checkpoint file and of the backbone file(s) written beside it.
  public func fileSizes() -> RunFileSizes {
    let headers = 1 << 16  // JSON headers, generously
    let state = stateTensors().reduce(0) { $0 + $1.count }
    return RunFileSizes(
      checkpoint: 4 * state + headers, backboneFiles: (4 * backbone.parameterCount + headers) * (average == nil ? 1 : 2))
  }

  /// The newest checkpoint that loads, restored into the model and the optimizer (a
  /// damaged one is set aside: RunFolder.newestReadableCheckpoint).
  func loadNewestUsableCheckpoint() throws -> (CheckpointState, String) {
    let (file, path) = try folder.newestReadableCheckpoint(report: report)
    let state = try Checkpoints.restore(file, from: path, model: model, optimizer: optimizer, average: average)
    return (state, path)
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
      _ = try lossAndGradients(batch, step: 0)
      optimizer.step(lr: 0)
      if i > 0 { times.append(clock() - start) }
    }
    return times.sorted()[times.count / 2]
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

/// `12s`, `3m5s`, `2h7m`; `?` for a non-number or a negative value.
public func formatDuration(_ s: Double) -> String {
  guard s.isFinite, s >= 0 else { return "?" }
  let t = Int(saturating: s)
  return t >= 3600 ? "\(t / 3600)h\(t % 3600 / 60)m" : t >= 60 ? "\(t / 60)m\(t % 60)s" : "\(t)s"
}

