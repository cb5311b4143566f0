/// Named backbone configurations.
public enum BackbonePreset {
  public static let names = [
    "vit-tiny", "vit-small", "vit-base", "vit-cpu", "resnet18", "resnet34", "resnet50", "resnet18-small",
    "resnet10-small",
  ]

  /// A preset by name. `imageSize`, `patchSize` and `inChannels` override its defaults
  /// (ViT presets default to 224 px / patch 16; `vit-cpu` to 32 px / patch 4; ResNets to
  /// 224 px with the ImageNet stem, `resnet18-small` and `resnet10-small` to 32 px with the small stem).
  /// `width` replaces the ViT's embedding width or the ResNet's first-stage channels
  /// (each later stage doubles it), for narrower backbones that train faster on a CPU.
  public static func config(
    _ name: String, imageSize: Int? = nil, patchSize: Int? = nil, inChannels: Int? = nil, width: Int? = nil
  ) throws -> BackboneConfig {
    let widthOverride = width
    if let w = width, w <= 0 { throw BackboneError("\(name): width must be positive, got \(w)") }
    func vit(_ width: Int, _ depth: Int, _ heads: Int, size: Int = 224, patch: Int = 16) -> BackboneConfig {
      .vit(
        ViTConfig(
          name: name, imageSize: imageSize ?? size, patchSize: patchSize ?? patch, inChannels: inChannels ?? 3,
          width: widthOverride ?? width, depth: depth, heads: heads))
    }
    func resnet(_ block: ResNetConfig.Block, _ layers: [Int], stem: ResNetConfig.Stem = .imagenet, size: Int = 224)
      -> BackboneConfig
    {
      .resnet(
        ResNetConfig(
          name: name, block: block, layers: layers, width: widthOverride ?? 64, inChannels: inChannels ?? 3, stem: stem,
          imageSize: imageSize ?? size))
    }
    switch name {
    case "vit-tiny": return vit(192, 12, 3)
    case "vit-small": return vit(384, 12, 6)
    case "vit-base": return vit(768, 12, 12)
    // Sized for CPU experiments on 28-32 px images: 64 patches of 4×4 at 32 px.
    case "vit-cpu": return vit(192, 6, 3, size: 32, patch: 4)
    case "resnet18": return resnet(.basic, [2, 2, 2, 2])
    case "resnet34": return resnet(.basic, [3, 4, 6, 3])
    case "resnet50": return resnet(.bottleneck, [3, 4, 6, 3])
    case "resnet18-small": return resnet(.basic, [2, 2, 2, 2], stem: .small, size: 32)
    // One basic block per stage (the CIFAR-style ResNet of quick CPU SimCLR runs): about
    // half the step time of resnet18-small, so twice the steps in the same minutes.
    case "resnet10-small": return resnet(.basic, [1, 1, 1, 1], stem: .small, size: 32)
    default:
      throw BackboneError("unknown backbone \"\(name)\"; known: \(names.joined(separator: ", "))")
    }
  }
}
