import Dispatch

/// `transform(0..<count)` on `threads` threads (contiguous static chunks), results in
/// index order whatever the timing. `transform` must be safe to call concurrently.
///
/// For jobs over files and images (decoding, checking, writing); tensor kernels use
/// Autograd's `Parallel`, whose thread count and chunking they share.
public func concurrentMap<T>(_ count: Int, threads: Int, _ transform: (Int) -> T) -> [T] {
  guard count > 0 else { return [] }
  let chunks = max(1, min(threads, count))
  if chunks == 1 { return (0..<count).map(transform) }
  let buffer = UnsafeMutableBufferPointer<T>.allocate(capacity: count)
  defer { buffer.deallocate() }
  // Each chunk initializes its own disjoint slice; the closure only runs during this call.
  nonisolated(unsafe) let work = transform
  nonisolated(unsafe) let out = buffer
  DispatchQueue.concurrentPerform(iterations: chunks) { c in
    for i in (count * c / chunks)..<(count * (c + 1) / chunks) {
      (out.baseAddress! + i).initialize(to: work(i))
    }
  }
  let result = Array(buffer)
  _ = buffer.deinitialize()
  return result
}
