import Autograd
import Vision
import XCTest

// Invariants of the augmentation transforms (Sources/Vision/Transforms). Expected values
// marked "by hand" are derived in the comments next to them from the resampling formula
// (PIL's ImagingResample / torchvision's antialias path) or torchvision's functional ops.

/// A `channels × height × width` image with values from `f(c, y, x)`.
private func makeImage(
  channels: Int, height: Int, width: Int, _ f: (Int, Int, Int) -> Float
) -> FloatImage {
  var pixels: [Float] = []
  pixels.reserveCapacity(channels * height * width)
  for c in 0..<channels {
    for y in 0..<height {
      for x in 0..<width { pixels.append(f(c, y, x)) }
    }
  }
  return FloatImage(channels: channels, height: height, width: width, pixels: pixels)
}

/// Uniform random values in [0, 1).
private func randomImage(channels: Int, height: Int, width: Int, seed: UInt64) -> FloatImage {
  var rng = RandomGenerator(seed: seed)
  return makeImage(channels: channels, height: height, width: width) { _, _, _ in rng.nextFloat() }
}

private func assertClose(
  _ a: [Float], _ b: [Float], tolerance: Float = 1e-5, _ message: String = "",
  file: StaticString = #filePath, line: UInt = #line
) {
  XCTAssertEqual(a.count, b.count, "count \(message)", file: file, line: line)
  for (i, (x, y)) in zip(a, b).enumerated() where abs(x - y) > tolerance {
    XCTFail("\(message) element \(i): \(x) vs \(y)", file: file, line: line)
    return
  }
}

/// The SimCLR view recipe (Chen et al. 2020, appendix A) at 32×32.
private func simCLRPipeline() throws -> Compose {
  Compose(
    try RandomResizedCrop(size: 32),
    try RandomHorizontalFlip(p: 0.5),
    try RandomApply(ColorJitter(brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1), p: 0.8),
    try RandomGrayscale(p: 0.2),
    try RandomApply(GaussianBlur(sigma: 0.1...2.0), p: 0.5))
}

final class TransformTests: XCTestCase {
  // MARK: FloatImage

  func testFloatImageConvertsHWCBytesToCHWAndBack() {
    // 2×1 RGB: pixel 0 = (0, 51, 255), pixel 1 = (255, 102, 0).
    let image = Image(width: 2, height: 1, channels: 3, pixels: [0, 51, 255, 255, 102, 0])
    let f = FloatImage(image)
    XCTAssertEqual(f.shape, [3, 1, 2])
    assertClose(f.pixels, [0, 1, 0.2, 0.4, 1, 0])  // planes R, G, B
    XCTAssertEqual(f.toImage(), image)
    // Out-of-range values clamp; x.5/255 rounds to nearest.
    let g = FloatImage(channels: 1, height: 1, width: 3, pixels: [-0.5, 1.5, 100.6 / 255])
    XCTAssertEqual(g.toImage().pixels, [0, 255, 101])
  }

  // MARK: Resize

  func testResizeOfConstantImageIsConstant() {
    let image = FloatImage(channels: 3, height: 13, width: 7, filledWith: 0.3)
    for interpolation in [Interpolation.nearest, .bilinear, .bicubic] {
      for antialias in [false, true] {
        for (h, w) in [(1, 1), (4, 3), (13, 7), (29, 50), (5, 17)] {
          let out = image.resized(height: h, width: w, interpolation: interpolation, antialias: antialias)
          XCTAssertEqual(out.shape, [3, h, w])
          for v in out.pixels { XCTAssertEqual(v, 0.3, accuracy: 1e-6, "\(interpolation) \(antialias) \(h)×\(w)") }
        }
      }
    }
  }

  func testBilinearUpscaleMatchesHandComputedValues() {
    // 2×2 → 4×4, half-pixel centres: output i samples input coordinate (i + 0.5)/2 - 0.5
    // = -0.25, 0.25, 0.75, 1.25, clamped at the edges, so each row [a, b] becomes
    // [a, .75a + .25b, .25a + .75b, b] (by hand; equals torch's align_corners=False).
    let image = FloatImage(channels: 1, height: 2, width: 2, pixels: [0, 1, 2, 3])
    for antialias in [false, true] {  // upscaling: antialias changes nothing
      let out = image.resized(height: 4, width: 4, interpolation: .bilinear, antialias: antialias)
      assertClose(
        out.pixels,
        [
          0, 0.25, 0.75, 1,
          0.5, 0.75, 1.25, 1.5,
          1.5, 1.75, 2.25, 2.5,
          2, 2.25, 2.75, 3,
        ])
    }
  }

  func testBilinearDownscaleMatchesHandComputedValues() {
    let row4 = FloatImage(channels: 1, height: 1, width: 4, pixels: [0, 1, 2, 3])
    // Without antialias, 4 → 2 averages pixel pairs: 0.5, 2.5.
    assertClose(row4.resized(height: 1, width: 2, antialias: false).pixels, [0.5, 2.5])
    // With antialias the triangle is widened ×2 (support 2). Output 0: centre 1.0, taps
    // x = 0, 1, 2 at distance (x + 0.5 - 1)/2 = -0.25, 0.25, 0.75 → weights 0.75, 0.75,
    // 0.25 (x = -1 is outside and dropped), so (0·.75 + 1·.75 + 2·.25)/1.75 = 5/7; output 1
    // by symmetry 3 - 5/7 = 16/7 (by hand).
    assertClose(row4.resized(height: 1, width: 2, antialias: true).pixels, [5.0 / 7, 16.0 / 7])

    // Stripes 0,1,0,1,… of width 9 → 3. Without antialias the filter samples pixel
    // centres 1, 4, 7 exactly: [1, 0, 1] (aliasing). With antialias (support 3), output 0
    // has weights 2/3, 1, 2/3, 1/3 on x = 0...3 → (1 + 1/3)/(8/3) = 0.5, and output 1 has
    // weights 1/3, 2/3, 1, 2/3, 1/3 on x = 2...6 → (2/3 + 2/3)/3 = 4/9 (by hand).
    let stripes = makeImage(channels: 1, height: 1, width: 9) { _, _, x in Float(x % 2) }
    assertClose(stripes.resized(height: 1, width: 3, antialias: false).pixels, [1, 0, 1])
    assertClose(stripes.resized(height: 1, width: 3, antialias: true).pixels, [0.5, 4.0 / 9, 0.5])
    // Bicubic with antialias also suppresses the stripes.
    for v in stripes.resized(height: 1, width: 3, interpolation: .bicubic, antialias: true).pixels {
      XCTAssertEqual(v, 0.5, accuracy: 0.15)
    }
  }

  func testResizeToSameSizeIsIdentityAndNearestPicksFloorIndex() {
    let image = randomImage(channels: 2, height: 6, width: 5, seed: 1)
    for interpolation in [Interpolation.nearest, .bilinear, .bicubic] {
      assertClose(image.resized(height: 6, width: 5, interpolation: interpolation).pixels, image.pixels)
    }
    // nearest 4 → 2 takes floor(i · 2) = 0, 2.
    let row = FloatImage(channels: 1, height: 1, width: 4, pixels: [0, 1, 2, 3])
    XCTAssertEqual(row.resized(height: 1, width: 2, interpolation: .nearest).pixels, [0, 2])
  }

  func testResizeShorterSideKeepsAspect() throws {
    var rng = RandomGenerator(seed: 0)
    let tall = FloatImage(channels: 3, height: 40, width: 20, filledWith: 0.5)
    let out = try Resize(shorterSide: 10)(tall, using: &rng)
    XCTAssertEqual(out.shape, [3, 20, 10])
    let wide = FloatImage(channels: 1, height: 7, width: 10, filledWith: 0.5)
    XCTAssertEqual(try Resize(shorterSide: 5)(wide, using: &rng).shape, [1, 5, 7])  // Int(5·10/7)
    XCTAssertEqual(try Resize(height: 3, width: 9)(wide, using: &rng).shape, [1, 3, 9])
  }

  // MARK: Crops and flips

  func testCenterCropOffsetsAndPaddingOfSmallImages() throws {
    var rng = RandomGenerator(seed: 0)
    let image = makeImage(channels: 1, height: 5, width: 6) { _, y, x in Float(y * 10 + x) }
    // 5×6 → 3×2: top = round(2/2) = 1, left = round(4/2) = 2.
    let crop = try CenterCrop(height: 3, width: 2)(image, using: &rng)
    XCTAssertEqual(crop.pixels, [12, 13, 22, 23, 32, 33])
    // Larger than the image: centred on a zero canvas; 5×6 → 7×7 pads 1 row above and
    // (7 - 6)/2 = 0 columns left.
    let padded = try CenterCrop(size: 7)(image, using: &rng)
    XCTAssertEqual(padded.shape, [1, 7, 7])
    XCTAssertEqual(padded[0, 0, 0], 0)
    XCTAssertEqual(padded[0, 1, 0], 0)  // original (0, 0) is 0 as well
    XCTAssertEqual(padded[0, 1, 5], 5)
    XCTAssertEqual(padded[0, 5, 5], 45)
    XCTAssertEqual(padded[0, 6, 3], 0)  // bottom padding row
    XCTAssertEqual(padded[0, 3, 6], 0)  // right padding column
    XCTAssertEqual(padded.pixels.reduce(0, +), image.pixels.reduce(0, +))
    // Mixed: 1×1 image → 3×3 keeps the pixel in the middle.
    let dot = FloatImage(channels: 2, height: 1, width: 1, pixels: [0.5, 0.7])
    let big = try CenterCrop(size: 3)(dot, using: &rng)
    XCTAssertEqual(big[0, 1, 1], 0.5)
    XCTAssertEqual(big[1, 1, 1], 0.7)
    XCTAssertEqual(big.pixels.reduce(0, +), 1.2, accuracy: 1e-6)
  }

  func testTwoFlipsAreTheIdentity() throws {
    let image = randomImage(channels: 3, height: 5, width: 7, seed: 2)
    let once = image.flippedHorizontally()
    XCTAssertNotEqual(once, image)
    XCTAssertEqual(once[1, 2, 0], image[1, 2, 6])
    XCTAssertEqual(once.flippedHorizontally(), image)
    var rng = RandomGenerator(seed: 0)
    let flip = HorizontalFlip()
    XCTAssertEqual(flip(flip(image, using: &rng), using: &rng), image)
    XCTAssertEqual(try RandomHorizontalFlip(p: 0)(image, using: &rng), image)
    XCTAssertEqual(try RandomHorizontalFlip(p: 1)(image, using: &rng), once)
  }

  func testRandomResizedCropBoxesStayInsideAndOutputSizeIsExact() throws {
    let sizes = [(1, 1), (1, 50), (50, 1), (37, 23), (32, 32), (3, 200), (224, 160)]
    let crops = [
      try RandomResizedCrop(size: 32),
      try RandomResizedCrop(height: 17, width: 9, scale: 0.5...1, ratio: 0.2...5),
      try RandomResizedCrop(size: 8, scale: 0.9...1, ratio: 3...4),  // often hits the fallback
    ]
    var rng = RandomGenerator(seed: 42)
    for crop in crops {
      for (h, w) in sizes {
        var areas: Set<Int> = []
        for _ in 0..<1000 {
          let box = crop.sampleBox(height: h, width: w, using: &rng)
          XCTAssertTrue(box.isInside(height: h, width: w), "\(box) outside \(h)×\(w)")
          areas.insert(box.height * box.width)
        }
        if h * w >= 1024 && crop.scale.lowerBound < 0.5 { XCTAssertGreaterThan(areas.count, 50) }
        let image = FloatImage(channels: 3, height: h, width: w, filledWith: 0.25)
        for _ in 0..<20 {
          let out = crop(image, using: &rng)
          XCTAssertEqual(out.shape, [3, crop.height, crop.width])
          for v in out.pixels { XCTAssertEqual(v, 0.25, accuracy: 1e-6) }
        }
      }
    }
  }

  func testRandomResizedCropFallbackIsCentredWithClampedRatio() throws {
    // A scale above 1 never fits, so all 10 attempts fail and torchvision's fallback
    // applies: a 40×20 (H×W) image has ratio 0.5 < 3/4, so w = 20, h = round(20 / 0.75) = 27,
    // top = (40 - 27) / 2 = 6.
    let crop = try RandomResizedCrop(size: 8, scale: 5...6)
    var rng = RandomGenerator(seed: 3)
    XCTAssertEqual(crop.sampleBox(height: 40, width: 20, using: &rng), CropBox(top: 6, left: 0, height: 27, width: 20))
    // Ratio inside the range: the whole image.
    XCTAssertEqual(crop.sampleBox(height: 30, width: 30, using: &rng), CropBox(top: 0, left: 0, height: 30, width: 30))
    // Too wide: h = 10, w = round(10 · 4/3) = 13, left = (50 - 13) / 2 = 18.
    XCTAssertEqual(crop.sampleBox(height: 10, width: 50, using: &rng), CropBox(top: 0, left: 18, height: 10, width: 13))
  }

  func testRandomResizedCropOfTheWholeImageIsAPlainResize() throws {
    // scale 1 and ratio 1 on a square image: always the full box.
    let crop = try RandomResizedCrop(size: 4, scale: 1...1, ratio: 1...1)
    let image = randomImage(channels: 3, height: 8, width: 8, seed: 5)
    var rng = RandomGenerator(seed: 0)
    XCTAssertEqual(crop(image, using: &rng), image.resized(height: 4, width: 4))
  }

  // MARK: Determinism

  func testSameSeedSameOutputDifferentSeedDifferentOutput() throws {
    let pipeline = try simCLRPipeline()
    let image = randomImage(channels: 3, height: 40, width: 36, seed: 7)
    var a = RandomGenerator(seed: 11)
    var b = RandomGenerator(seed: 11)
    var c = RandomGenerator(seed: 12)
    for _ in 0..<20 {
      let va = pipeline(image, using: &a)
      XCTAssertEqual(va, pipeline(image, using: &b))
      XCTAssertNotEqual(va, pipeline(image, using: &c))
      XCTAssertEqual(va.shape, [3, 32, 32])
    }
    XCTAssertEqual(a, b)  // same number of draws
  }

  // MARK: Colour

  func testNormalizeThenInverseIsIdentity() throws {
    let image = randomImage(channels: 3, height: 4, width: 5, seed: 8)
    var rng = RandomGenerator(seed: 0)
    let normalize = Normalize.imageNet
    let out = normalize(image, using: &rng)
    XCTAssertEqual(out[1, 2, 3], (image[1, 2, 3] - 0.456) / 0.224, accuracy: 1e-6)
    assertClose(normalize.inverse(out, using: &rng).pixels, image.pixels, tolerance: 1e-6)
    // One value for every channel.
    let single = try Normalize(mean: [0.5], std: [0.25])
    let gray = FloatImage(channels: 1, height: 1, width: 2, pixels: [0, 1])
    XCTAssertEqual(single(gray, using: &rng).pixels, [-2, 2])
  }

  func testGrayscaleMakesChannelsEqualWithBT601Weights() throws {
    let image = randomImage(channels: 3, height: 6, width: 4, seed: 9)
    var rng = RandomGenerator(seed: 0)
    let out = try RandomGrayscale(p: 1)(image, using: &rng)
    XCTAssertEqual(out.shape, image.shape)  // keeps the channel count
    for y in 0..<6 {
      for x in 0..<4 {
        let luma = 0.299 * image[0, y, x] + 0.587 * image[1, y, x] + 0.114 * image[2, y, x]
        XCTAssertEqual(out[0, y, x], luma, accuracy: 1e-6)
        XCTAssertEqual(out[1, y, x], out[0, y, x])
        XCTAssertEqual(out[2, y, x], out[0, y, x])
      }
    }
    XCTAssertEqual(try RandomGrayscale(p: 0)(image, using: &rng), image)
    let gray = randomImage(channels: 1, height: 3, width: 3, seed: 1)
    XCTAssertEqual(try RandomGrayscale(p: 1)(gray, using: &rng), gray)
    let one = try Grayscale()(image, using: &rng)
    XCTAssertEqual(one.shape, [1, 6, 4])
    XCTAssertEqual(Array(out.pixels[0..<24]), one.pixels)
  }

  func testChannelConversionGrayAndRGB() throws {
    var rng = RandomGenerator(seed: 0)
    let gray = randomImage(channels: 1, height: 3, width: 2, seed: 2)
    let rgb = try ConvertChannels(to: 3)(gray, using: &rng)
    XCTAssertEqual(rgb.shape, [3, 3, 2])
    XCTAssertEqual(Array(rgb.pixels[6..<12]), gray.pixels)
    XCTAssertEqual(Array(rgb.pixels[12..<18]), gray.pixels)
    // Gray → RGB → gray returns the gray values (the weights sum to 1).
    assertClose(try ConvertChannels(to: 1)(rgb, using: &rng).pixels, gray.pixels, tolerance: 1e-6)
    XCTAssertEqual(try ConvertChannels(to: 3)(rgb, using: &rng), rgb)
    // RGBA → RGB drops alpha; gray+alpha → gray drops alpha.
    let rgba = randomImage(channels: 4, height: 2, width: 2, seed: 3)
    XCTAssertEqual(try ConvertChannels(to: 3)(rgba, using: &rng).pixels, Array(rgba.pixels[0..<12]))
    let ga = randomImage(channels: 2, height: 2, width: 2, seed: 4)
    XCTAssertEqual(try ConvertChannels(to: 1)(ga, using: &rng).pixels, Array(ga.pixels[0..<4]))
    XCTAssertEqual(try ConvertChannels(to: 3)(ga, using: &rng).shape, [3, 2, 2])
  }

  func testColorJitterWithZeroFactorsIsTheIdentity() throws {
    let jitter = try ColorJitter()
    XCTAssertNil(jitter.brightness)
    XCTAssertNil(jitter.hue)
    var rng = RandomGenerator(seed: 5)
    for channels in [1, 3] {
      // Include values outside [0, 1]: the identity must not even clamp.
      let image = makeImage(channels: channels, height: 5, width: 5) { c, y, x in Float(c + y * 5 + x) / 20 - 0.2 }
      XCTAssertEqual(jitter(image, using: &rng), image)
    }
    XCTAssertEqual(
      ColorJitter.apply(.init(order: [3, 2, 1, 0]), to: randomImage(channels: 3, height: 2, width: 2, seed: 1)),
      randomImage(channels: 3, height: 2, width: 2, seed: 1))
  }

  func testColorJitterFormulas() {
    // One RGB pixel (0.2, 0.4, 0.8); luma = 0.299·0.2 + 0.587·0.4 + 0.114·0.8 = 0.3858.
    let px = FloatImage(channels: 3, height: 1, width: 1, pixels: [0.2, 0.4, 0.8])
    assertClose(ColorJitter.adjustBrightness(px, factor: 1.5).pixels, [0.3, 0.6, 1])  // 1.2 clamps
    // Saturation 0 gives the luma everywhere; 2 gives 2x - luma, clamped.
    assertClose(ColorJitter.adjustSaturation(px, factor: 0).pixels, [0.3858, 0.3858, 0.3858])
    assertClose(ColorJitter.adjustSaturation(px, factor: 2).pixels, [0.0142, 0.4142, 1])
    // Contrast blends with the image's mean luma (a single pixel: its own luma).
    assertClose(ColorJitter.adjustContrast(px, factor: 0.5).pixels, [0.2929, 0.3929, 0.5929])
    // Gray images: contrast uses the gray mean (0.4); saturation and hue are no-ops.
    let gray = FloatImage(channels: 1, height: 1, width: 2, pixels: [0.2, 0.6])
    assertClose(ColorJitter.adjustContrast(gray, factor: 0.5).pixels, [0.3, 0.5])
    XCTAssertEqual(ColorJitter.adjustSaturation(gray, factor: 0), gray)
    XCTAssertEqual(ColorJitter.adjustHue(gray, shift: 0.3), gray)
  }

  func testHueShiftRotatesPrimaries() {
    // Hue of red is 0; +1/3 of the circle is green, -1/3 (= +2/3) is blue.
    let red = FloatImage(channels: 3, height: 1, width: 1, pixels: [1, 0, 0])
    assertClose(ColorJitter.adjustHue(red, shift: 1.0 / 3).pixels, [0, 1, 0], tolerance: 1e-5)
    assertClose(ColorJitter.adjustHue(red, shift: -1.0 / 3).pixels, [0, 0, 1], tolerance: 1e-5)
    // A shift of 0 reproduces any colour (RGB → HSV → RGB round trip).
    let image = randomImage(channels: 3, height: 4, width: 4, seed: 6)
    assertClose(ColorJitter.adjustHue(image, shift: 0).pixels, image.pixels, tolerance: 1e-5)
    // Half a turn then half a turn back.
    let there = ColorJitter.adjustHue(image, shift: 0.5)
    assertClose(ColorJitter.adjustHue(there, shift: -0.5).pixels, image.pixels, tolerance: 1e-5)
    // Grays have no hue.
    let grayRGB = FloatImage(channels: 3, height: 1, width: 1, pixels: [0.3, 0.3, 0.3])
    assertClose(ColorJitter.adjustHue(grayRGB, shift: 0.25).pixels, grayRGB.pixels)
  }

  func testColorJitterOutputsStayInRangeAndOrderIsAPermutation() throws {
    let jitter = try ColorJitter(brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.2)
    let image = randomImage(channels: 3, height: 8, width: 8, seed: 10)
    var rng = RandomGenerator(seed: 1)
    for _ in 0..<100 {
      let params = jitter.sampleParameters(using: &rng)
      XCTAssertEqual(params.order.sorted(), [0, 1, 2, 3])
      XCTAssertTrue((0.2...1.8).contains(params.brightness!))
      XCTAssertTrue((-0.2...0.2).contains(params.hue!))
      for v in ColorJitter.apply(params, to: image).pixels { XCTAssertTrue((0...1).contains(v)) }
    }
  }

  func testSolarizeInvertsAtOrAboveThreshold() throws {
    var rng = RandomGenerator(seed: 0)
    let image = FloatImage(channels: 1, height: 1, width: 4, pixels: [0.2, 0.5, 0.8, 1])
    assertClose(try Solarize(threshold: 0.5)(image, using: &rng).pixels, [0.2, 0.5, 0.2, 0])
    assertClose(try Solarize(threshold: 0.9)(image, using: &rng).pixels, [0.2, 0.5, 0.8, 0])
    XCTAssertEqual(try Solarize(threshold: 0.5, p: 0)(image, using: &rng), image)
  }

  // MARK: Blur

  func testGaussianKernelSumsToOneAndIsSymmetric() {
    for sigma: Float in [0.1, 0.5, 1, 2, 3.3] {
      let size = GaussianBlur.kernelSize(forSigma: sigma)
      XCTAssertEqual(size % 2, 1)
      XCTAssertEqual(size, 2 * Int((3 * sigma).rounded(.up)) + 1)
      let k = GaussianBlur.kernel(size: size, sigma: sigma)
      XCTAssertEqual(k.reduce(0, +), 1, accuracy: 1e-6)
      XCTAssertEqual(k, k.reversed())
      XCTAssertEqual(k[size / 2], k.max())
    }
    // Size 3, σ = 1: exp(-1/2) / (1 + 2 exp(-1/2)) at the sides (by hand).
    let e = Float(0.6065306597)
    assertClose(GaussianBlur.kernel(size: 3, sigma: 1), [e / (1 + 2 * e), 1 / (1 + 2 * e), e / (1 + 2 * e)])
  }

  func testBlurPreservesConstantImagesAndMeansOnTinyImages() throws {
    var rng = RandomGenerator(seed: 0)
    let blur = try GaussianBlur(sigma: 0.1...3)
    for (h, w) in [(1, 1), (2, 3), (5, 1), (32, 32)] {
      let image = FloatImage(channels: 3, height: h, width: w, filledWith: 0.6)
      for _ in 0..<10 {
        let out = blur(image, using: &rng)
        XCTAssertEqual(out.shape, image.shape)
        for v in out.pixels { XCTAssertEqual(v, 0.6, accuracy: 1e-6) }
      }
      // A kernel much wider than the image (repeated reflection).
      let wide = image.blurred(sigma: 5, kernelSize: 31)
      for v in wide.pixels { XCTAssertEqual(v, 0.6, accuracy: 1e-6) }
    }
  }

  func testBlurUsesReflectPadding() {
    // Row [1, 0, 0] with a 3-tap kernel k = (a, b, a): reflect padding (no edge repeat)
    // reads [0 | 1 0 0 | 0], so out[0] = b·1, out[1] = a·1, out[2] = 0. Replicate padding
    // would give out[0] = a + b.
    let k = GaussianBlur.kernel(size: 3, sigma: 1)
    let row = FloatImage(channels: 1, height: 1, width: 3, pixels: [1, 0, 0])
    assertClose(row.blurred(sigma: 1, kernelSize: 3).pixels, [k[1], k[0], 0], tolerance: 1e-6)
    // The same down a column.
    let column = FloatImage(channels: 1, height: 3, width: 1, pixels: [1, 0, 0])
    assertClose(column.blurred(sigma: 1, kernelSize: 3).pixels, [k[1], k[0], 0], tolerance: 1e-6)
    // An impulse in the middle of a large image spreads as the outer product k·kᵀ.
    var impulse = FloatImage(channels: 1, height: 9, width: 9, filledWith: 0)
    impulse[0, 4, 4] = 1
    let spread = impulse.blurred(sigma: 0.8, kernelSize: 5)
    let k5 = GaussianBlur.kernel(size: 5, sigma: 0.8)
    XCTAssertEqual(spread[0, 3, 5], k5[1] * k5[3], accuracy: 1e-6)
    XCTAssertEqual(spread.pixels.reduce(0, +), 1, accuracy: 1e-5)
  }

  // MARK: Pipelines

  func testRandomApplyAndCompose() throws {
    var rng = RandomGenerator(seed: 0)
    let image = randomImage(channels: 3, height: 4, width: 4, seed: 11)
    XCTAssertEqual(try RandomApply(HorizontalFlip(), p: 0)(image, using: &rng), image)
    XCTAssertEqual(try RandomApply(HorizontalFlip(), p: 1)(image, using: &rng), image.flippedHorizontally())
    let twice = try RandomApply([HorizontalFlip(), HorizontalFlip()], p: 1)
    XCTAssertEqual(twice(image, using: &rng), image)
    XCTAssertEqual(Compose()(image, using: &rng), image)
    // 4×4 → centre 2×2 (rows and columns 1...2), then mirrored.
    let cropFlip = Compose(try CenterCrop(size: 2), HorizontalFlip())(image, using: &rng)
    XCTAssertEqual(cropFlip.shape, [3, 2, 2])
    XCTAssertEqual(Array(cropFlip.pixels[0..<4]), [image[0, 1, 2], image[0, 1, 1], image[0, 2, 2], image[0, 2, 1]])
  }

  func testMultiViewGivesNIndependentViews() throws {
    let views = try MultiView(views: 4, simCLRPipeline())
    XCTAssertEqual(views.viewCount, 4)
    let image = randomImage(channels: 3, height: 48, width: 48, seed: 12)
    var rng = RandomGenerator(seed: 1)
    let out = views(image, using: &rng)
    XCTAssertEqual(out.count, 4)
    for v in out { XCTAssertEqual(v.shape, [3, 32, 32]) }
    for i in 0..<4 {
      for j in (i + 1)..<4 { XCTAssertNotEqual(out[i], out[j], "views \(i) and \(j) are identical") }
    }
    var again = RandomGenerator(seed: 1)
    XCTAssertEqual(views(image, using: &again), out)
    // Each view has its own generator: changing view 0's pipeline leaves view 1 alone.
    let mixed = try MultiView([HorizontalFlip(), simCLRPipeline()])
    let pair = try MultiView([simCLRPipeline(), simCLRPipeline()])
    var r1 = RandomGenerator(seed: 9)
    var r2 = RandomGenerator(seed: 9)
    XCTAssertEqual(mixed(image, using: &r1)[1], pair(image, using: &r2)[1])
    // Different pipelines per view (e.g. a global and a local crop).
    let multiCrop = try MultiView([RandomResizedCrop(size: 32), RandomResizedCrop(size: 16)])
    XCTAssertEqual(multiCrop(image.toImage(), using: &rng).map(\.shape), [[3, 32, 32], [3, 16, 16]])
  }

  func testTinyImagesNeverTrap() throws {
    let pipeline = try simCLRPipeline()
    let others: [any ImageTransform] = [
      try CenterCrop(size: 5), try Resize(shorterSide: 3), try Resize(height: 2, width: 9, interpolation: .bicubic),
      try GaussianBlur(sigma: 2...2, kernelSize: 15),
      try ColorJitter(brightness: 1, contrast: 1, saturation: 1, hue: 0.5),
      try Solarize(), try RandomGrayscale(p: 1), try ConvertChannels(to: 1),
    ]
    var rng = RandomGenerator(seed: 2)
    for (h, w) in [(1, 1), (1, 2), (3, 1)] {
      for c in [1, 3] {
        let image = randomImage(channels: c, height: h, width: w, seed: 3)
        XCTAssertEqual(pipeline(image, using: &rng).shape, [c, 32, 32])
        for t in others { _ = t(image, using: &rng) }
      }
    }
  }

  // MARK: Patch grid

  func testPatchGridLabelsMatchNeighbourOffsets() {
    // Row-major order of the 8 neighbours, skipping the centre.
    let expected = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
    for (label, offset) in expected.enumerated() {
      let o = PatchGridSampler.offset(forLabel: label)
      XCTAssertEqual(o.rows, offset.0)
      XCTAssertEqual(o.columns, offset.1)
      XCTAssertEqual(PatchGridSampler.label(forOffset: offset.0, offset.1), label)
    }
    XCTAssertNil(PatchGridSampler.label(forOffset: 0, 0))
    XCTAssertNil(PatchGridSampler.label(forOffset: 2, 0))
  }

  func testPatchGridGeometry() throws {
    let sampler = try PatchGridSampler(patchSize: 7, gap: 4, jitter: 2)
    XCTAssertEqual(sampler.gridSize, 29)  // 3·7 + 2·4
    XCTAssertEqual(sampler.minimumImageSize, 33)  // + 2·2
    // Every pixel encodes its position, so a patch shows where it was cut.
    let (h, w) = (40, 50)
    let image = makeImage(channels: 2, height: h, width: w) { c, y, x in Float(c * 10_000 + y * 100 + x) }
    var rng = RandomGenerator(seed: 3)
    var labels = [Int](repeating: 0, count: 8)
    var jitters: Set<Int> = []
    var origins: Set<Int> = []
    for _ in 0..<2000 {
      let layout = try sampler.sampleLayout(height: h, width: w, using: &rng)
      labels[layout.label] += 1
      origins.insert(layout.gridTop * 100 + layout.gridLeft)
      for box in [layout.center, layout.neighbor] {
        XCTAssertTrue(box.isInside(height: h, width: w), "\(box)")
        XCTAssertEqual(box.height, 7)
        XCTAssertEqual(box.width, 7)
      }
      // Centre within ±jitter of cell (1, 1); neighbour within ±jitter of its cell.
      let (dr, dc) = PatchGridSampler.offset(forLabel: layout.label)
      let cy = layout.center.top - (layout.gridTop + sampler.stride)
      let cx = layout.center.left - (layout.gridLeft + sampler.stride)
      let ny = layout.neighbor.top - (layout.gridTop + (1 + dr) * sampler.stride)
      let nx = layout.neighbor.left - (layout.gridLeft + (1 + dc) * sampler.stride)
      for j in [cy, cx, ny, nx] { XCTAssertTrue((-2...2).contains(j), "jitter \(j)") }
      jitters.insert(cy)
      // The neighbour's offset from the centre is the label's offset times the stride,
      // up to the two jitters: same row/column within ±4, else at least a patch away
      // (gap 4 - 2·jitter 2 ≥ 0: patches never overlap).
      let dy = layout.neighbor.top - layout.center.top
      let dx = layout.neighbor.left - layout.center.left
      XCTAssertTrue(abs(dy - dr * sampler.stride) <= 4 && abs(dx - dc * sampler.stride) <= 4)
      for (d, o) in [(dy, dr), (dx, dc)] {
        if o == 0 {
          XCTAssertLessThanOrEqual(abs(d), 4)
        } else {
          XCTAssertEqual(d.signum(), o)
          XCTAssertGreaterThanOrEqual(abs(d), 7)
        }
      }
    }
    for n in labels { XCTAssertGreaterThan(n, 150) }  // ~250 each
    XCTAssertEqual(jitters, Set(-2...2))
    XCTAssertGreaterThan(origins.count, 50)  // the grid moves around (8 × 18 positions)

    // The sample's patches are the pixels under the layout's boxes.
    var a = RandomGenerator(seed: 4)
    var b = RandomGenerator(seed: 4)
    let sample = try sampler(image, using: &a)
    let layout = try sampler.sampleLayout(height: h, width: w, using: &b)
    XCTAssertEqual(sample.label, layout.label)
    XCTAssertEqual(sample.center.shape, [2, 7, 7])
    XCTAssertEqual(sample.center[0, 0, 0], Float(layout.center.top * 100 + layout.center.left))
    XCTAssertEqual(sample.neighbor[1, 6, 6], Float(10_000 + (layout.neighbor.top + 6) * 100 + layout.neighbor.left + 6))
  }

  func testPatchGridFitsExactlyAndRejectsSmallImages() throws {
    let sampler = try PatchGridSampler(patchSize: 8, gap: 2, jitter: 1)
    var rng = RandomGenerator(seed: 5)
    // Exactly the minimum: the grid is fixed at (jitter, jitter).
    for _ in 0..<100 {
      let layout = try sampler.sampleLayout(height: 30, width: 30, using: &rng)
      XCTAssertEqual(layout.gridTop, 1)
      XCTAssertEqual(layout.gridLeft, 1)
      XCTAssertTrue(layout.center.isInside(height: 30, width: 30))
      XCTAssertTrue(layout.neighbor.isInside(height: 30, width: 30))
    }
    let small = FloatImage(channels: 1, height: 28, width: 28, filledWith: 0)
    XCTAssertThrowsError(try sampler(small, using: &rng)) { error in
      let text = "\(error)"
      XCTAssertTrue(text.contains("28×28"), text)
      XCTAssertTrue(text.contains("too small"), text)
      XCTAssertTrue(text.contains("30×30"), text)
    }
    XCTAssertThrowsError(try PatchGridSampler(patchSize: 8, gap: 2, jitter: 2))  // patches could overlap
    XCTAssertThrowsError(try PatchGridSampler(patchSize: 0, gap: 2, jitter: 0))
  }

  // MARK: Batches

  func testMakeBatchShapeAndMismatchError() throws {
    let images = (0..<3).map { randomImage(channels: 3, height: 4, width: 5, seed: UInt64($0)) }
    let batch = try makeBatch(images)
    XCTAssertEqual(batch.shape, [3, 3, 4, 5])
    XCTAssertEqual(batch.scalars, images.flatMap(\.pixels))
    XCTAssertEqual(batch[2, 1, 3, 4], images[2][1, 3, 4])

    let odd =
      images + [
        randomImage(channels: 3, height: 4, width: 5, seed: 9), randomImage(channels: 1, height: 4, width: 5, seed: 9),
      ]
    XCTAssertThrowsError(try makeBatch(odd + [images[0]])) { error in
      XCTAssertEqual(
        "\(error)",
        "makeBatch: image 4 is 1×4×5 (C×H×W) but image 0 is 3×4×5; all images in a batch must have the same size")
    }
    XCTAssertThrowsError(try makeBatch([]))
  }

  // MARK: Configuration errors

  func testInvalidSettingsThrowClearErrors() {
    func message(_ body: () throws -> Any) -> String {
      do {
        _ = try body()
        return "no error"
      } catch { return "\(error)" }
    }
    XCTAssertEqual(
      message { try RandomResizedCrop(size: 32, scale: 0...1) },
      "RandomResizedCrop: scale must satisfy 0 < lower ≤ upper < ∞, got 0.0...1.0")
    XCTAssertTrue(message { try RandomResizedCrop(size: 0) }.contains("height must be positive"))
    XCTAssertTrue(message { try ColorJitter(hue: 0.6) }.contains("hue must be in [0, 0.5]"))
    XCTAssertTrue(message { try ColorJitter(brightness: -1) }.contains("brightness"))
    XCTAssertTrue(message { try GaussianBlur(kernelSize: 4) }.contains("odd"))
    XCTAssertTrue(message { try GaussianBlur(sigma: 0...1) }.contains("sigma"))
    XCTAssertTrue(message { try RandomApply(HorizontalFlip(), p: 1.5) }.contains("[0, 1]"))
    XCTAssertTrue(message { try Normalize(mean: [0, 0], std: [1]) }.contains("same"))
    XCTAssertTrue(message { try Normalize(mean: [0], std: [0]) }.contains("> 0"))
    XCTAssertTrue(message { try MultiView([]) }.contains("at least one"))
    XCTAssertTrue(message { try ConvertChannels(to: 2) }.contains("1 (gray) or 3 (RGB)"))
  }
}
