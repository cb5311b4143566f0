import Autograd
import Foundation
import Support

// `pretext data check`: decode every image (PNG or JPEG) under a folder, not just its
// header, and report what a training run would meet — how many images are usable, their
// sizes and formats, and each unusable file with the reason. Decoding runs on all cores;
// the report is in path order whatever the timing.

/// The result of checking an image folder. Encodes to JSON with snake_case keys.
public struct DataCheckReport: Sendable, Codable, Hashable {
  /// One bar of the size/format histogram.
  public struct Shape: Sendable, Codable, Hashable {
    public let width: Int
    public let height: Int
    /// The stored format (`ImageHeader.formatName`): for PNG `gray`, `gray+alpha`, `RGB`,
    /// `RGBA` or `palette`, with the bit depth appended when it is not 8 (`gray 16-bit`);
    /// for JPEG `JPEG 4:2:0`, `JPEG gray`, `JPEG CMYK`, … (`progressive` appended).
    public let format: String
    /// Channels the image decodes to by default (1 for gray sources, 3 otherwise).
    public let channels: Int
    public let count: Int

    public init(width: Int, height: Int, format: String, channels: Int, count: Int) {
      self.width = width
      self.height = height
      self.format = format
      self.channels = channels
      self.count = count
    }

    /// `28×28 gray: 60000`.
    public var text: String { "\(width)×\(height) \(format): \(count)" }
  }

  /// The folder checked.
  public let root: String
  /// Files named like images (`*.png`, `*.jpg`, `*.jpeg`), usable or not (including
  /// dangling links and unreadable names).
  public let imageFiles: Int
  /// Image files that decoded completely.
  public let usable: Int
  /// Usable images by size and format, most frequent first.
  public let shapes: [Shape]
  /// Unusable files (and unreadable folders) with the reason, sorted by path.
  public let rejected: [DatasetIssue]
  /// Files that are not images by name (not decoded, not an error).
  public let skippedCount: Int
  /// The first few skipped files, sorted by path.
  public let skippedExamples: [String]
  /// Wall-clock time of the check.
  public let seconds: Double
  /// True when every image file decoded (and every folder could be read).
  public let allUsable: Bool

  public init(
    root: String, imageFiles: Int, usable: Int, shapes: [Shape], rejected: [DatasetIssue],
    skippedCount: Int, skippedExamples: [String], seconds: Double
  ) {
    self.root = root
    self.imageFiles = imageFiles
    self.usable = usable
    self.shapes = shapes
    self.rejected = rejected
    self.skippedCount = skippedCount
    self.skippedExamples = skippedExamples
    self.seconds = seconds
    self.allUsable = rejected.isEmpty
  }

  enum CodingKeys: String, CodingKey {
    case root, usable, shapes, rejected, seconds
    case imageFiles = "image_files"
    case skippedCount = "skipped_count"
    case skippedExamples = "skipped_examples"
    case allUsable = "all_usable"
  }

  /// The report for people: counts, the histogram, skipped and rejected files.
  public var text: String {
    var lines: [String] = []
    let time = String(format: "%.2f", seconds)
    lines.append(
      "\(root): \(imageFiles) image file\(imageFiles == 1 ? "" : "s") (\(ImageFormat.names)), \(usable) usable "
        + "(decoded in \(time) s)")
    if !shapes.isEmpty {
      lines.append("sizes:")
      lines += shapes.map { "  " + $0.text }
    }
    if skippedCount > 0 {
      let more = skippedCount > skippedExamples.count ? ", …" : ""
      lines.append(
        "skipped \(skippedCount) non-image file\(skippedCount == 1 ? "" : "s"): "
          + skippedExamples.joined(separator: ", ") + more)
    }
    if rejected.isEmpty {
      lines.append("all images are usable")
    } else {
      lines.append("rejected \(rejected.count) file\(rejected.count == 1 ? "" : "s"):")
      lines += rejected.map { "  \($0.path): \($0.reason)" }
      lines.append("fix or remove the rejected files; training skips them (or stops, in strict mode)")
    }
    return lines.joined(separator: "\n")
  }
}

public enum DataCheck {
  /// Skipped files named in a report.
  public static let skippedExampleCount = 5

  /// Scans `path` recursively (or reads the `.txt` image list it names) and decodes every
  /// image file with `options`, on `threads` threads.
  ///
  /// - Throws: `VisionError` when the folder is missing, not a folder or unreadable, or
  ///   holds no image file at all (unusable image files are reported, not thrown).
  public static func run(
    path: String, threads: Int = Parallel.threads, options: ImageDecodeOptions = ImageDecodeOptions()
  ) throws -> DataCheckReport {
    let start = DispatchTime.now()
    let opened = try FolderScan.open(path)
    let root = opened.root
    let scan = opened.scan
    guard !scan.images.isEmpty else { throw scan.emptyError(root: opened.list ?? root) }

    enum Outcome {
      case usable(width: Int, height: Int, format: String, channels: Int)
      case rejected(String)
    }
    let outcomes: [Outcome] = concurrentMap(scan.images.count, threads: threads) { i in
      let file = FolderScan.join(root, scan.images[i])
      do {
        let bytes = try ImageFile.readFile(file)
        let header = try ImageFile.header(of: bytes, path: file)
        let image = try ImageFile.decode(bytes, options: options, path: file)
        return .usable(
          width: image.width, height: image.height, format: header.formatName, channels: image.channels)
      } catch let error as VisionError {
        return .rejected(error.reason)
      } catch {
        return .rejected("\(error)")
      }
    }

    struct Key: Hashable {
      let width: Int
      let height: Int
      let format: String
      let channels: Int
    }
    var histogram: [Key: Int] = [:]
    var rejected = scan.issues
    for (file, outcome) in zip(scan.images, outcomes) {
      switch outcome {
      case .usable(let w, let h, let f, let c):
        histogram[Key(width: w, height: h, format: f, channels: c), default: 0] += 1
      case .rejected(let reason): rejected.append(DatasetIssue(path: file, reason: reason))
      }
    }
    rejected.sort { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
    let shapes = histogram.map {
      DataCheckReport.Shape(width: $0.width, height: $0.height, format: $0.format, channels: $0.channels, count: $1)
    }.sorted { a, b in
      if a.count != b.count { return a.count > b.count }
      if a.width != b.width { return a.width < b.width }
      if a.height != b.height { return a.height < b.height }
      return a.format.utf8.lexicographicallyPrecedes(b.format.utf8)
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    return DataCheckReport(
      root: opened.list ?? root, imageFiles: scan.images.count + scan.issues.filter { !$0.path.hasSuffix("/") }.count,
      usable: outcomes.filter { if case .usable = $0 { true } else { false } }.count,
      shapes: shapes, rejected: rejected, skippedCount: scan.skipped.count,
      skippedExamples: Array(scan.skipped.prefix(skippedExampleCount)), seconds: seconds)
  }
}
