//! Rendering native (uncompressed) frames to 8-bit images for WADO-RS `rendered`/`thumbnail`
//! and WADO-URI (PS3.18 §8.3.5, §10.4.1.1.3): Modality LUT (rescale), VOI window (request
//! parameter, else the header's first window, else the frame's range), MONOCHROME1 inversion,
//! viewport scaling, JPEG or PNG. Compressed frames need a decoder and are not rendered here.

use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot render: {0}")]
    Unsupported(String),
    #[error("encoding the image failed: {0}")]
    Encode(String),
}

/// The image pixel module, read from an instance's DICOM JSON.
#[derive(Debug, Clone)]
pub struct PixelModule {
    pub rows: u32,
    pub columns: u32,
    pub samples_per_pixel: u32,
    pub bits_allocated: u32,
    pub bits_stored: u32,
    pub pixel_representation: u32,
    pub photometric: String,
    pub planar_configuration: u32,
    pub rescale_slope: f64,
    pub rescale_intercept: f64,
    pub window: Option<(f64, f64)>,
}

fn num(doc: &Value, tag: &str) -> Option<f64> {
    doc.get(tag)?.get("Value")?.get(0)?.as_f64()
}

fn text(doc: &Value, tag: &str) -> Option<String> {
    doc.get(tag)?
        .get("Value")?
        .get(0)?
        .as_str()
        .map(str::to_owned)
}

impl PixelModule {
    pub fn from_json(doc: &Value) -> Option<Self> {
        Some(PixelModule {
            rows: num(doc, "00280010")? as u32,
            columns: num(doc, "00280011")? as u32,
            samples_per_pixel: num(doc, "00280002").unwrap_or(1.0) as u32,
            bits_allocated: num(doc, "00280100")? as u32,
            bits_stored: num(doc, "00280101").or_else(|| num(doc, "00280100"))? as u32,
            pixel_representation: num(doc, "00280103").unwrap_or(0.0) as u32,
            photometric: text(doc, "00280004").unwrap_or_else(|| "MONOCHROME2".into()),
            planar_configuration: num(doc, "00280006").unwrap_or(0.0) as u32,
            rescale_slope: num(doc, "00281053").unwrap_or(1.0),
            rescale_intercept: num(doc, "00281052").unwrap_or(0.0),
            window: num(doc, "00281050").zip(num(doc, "00281051")),
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// (center, width) overriding the header's window.
    pub window: Option<(f64, f64)>,
    /// Largest output size; the image is scaled to fit, keeping its aspect ratio.
    pub viewport: Option<(u32, u32)>,
    /// JPEG quality 1–100.
    pub quality: u8,
    pub png: bool,
}

/// Renders one native little-endian frame (`bytes`) of `pm`.
pub fn render(
    pm: &PixelModule,
    bytes: &[u8],
    opts: &RenderOptions,
) -> Result<Vec<u8>, RenderError> {
    let (w, h) = (pm.columns, pm.rows);
    let n = (w * h) as usize;
    let img = match (pm.samples_per_pixel, pm.photometric.as_str()) {
        (1, "MONOCHROME1" | "MONOCHROME2") => {
            let values = samples(pm, bytes, n)?;
            let modality: Vec<f64> = values
                .iter()
                .map(|v| v * pm.rescale_slope + pm.rescale_intercept)
                .collect();
            let (center, width) = opts.window.or(pm.window).unwrap_or_else(|| {
                let lo = modality.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = modality.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                ((lo + hi) / 2.0, (hi - lo).max(1.0))
            });
            let invert = pm.photometric == "MONOCHROME1";
            // Linear VOI function, PS3.3 C.11.2.1.2.1.
            let lut = |x: f64| -> u8 {
                let y =
                    ((x - (center - 0.5)) / (width - 1.0).max(1.0) + 0.5).clamp(0.0, 1.0) * 255.0;
                let y = y.round() as u8;
                if invert { 255 - y } else { y }
            };
            let px: Vec<u8> = modality.iter().map(|&v| lut(v)).collect();
            DynamicImage::ImageLuma8(
                GrayImage::from_raw(w, h, px)
                    .ok_or_else(|| RenderError::Unsupported("frame size".into()))?,
            )
        }
        (3, "RGB") if pm.bits_allocated == 8 => {
            let need = n * 3;
            if bytes.len() < need {
                return Err(RenderError::Unsupported(
                    "frame shorter than Rows×Columns×3".into(),
                ));
            }
            let px = if pm.planar_configuration == 1 {
                (0..n)
                    .flat_map(|i| [bytes[i], bytes[n + i], bytes[2 * n + i]])
                    .collect()
            } else {
                bytes[..need].to_vec()
            };
            DynamicImage::ImageRgb8(
                RgbImage::from_raw(w, h, px)
                    .ok_or_else(|| RenderError::Unsupported("frame size".into()))?,
            )
        }
        (spp, pi) => return Err(RenderError::Unsupported(format!("{spp} samples, {pi}"))),
    };
    let img = match opts.viewport {
        Some((vw, vh)) if vw > 0 && vh > 0 && (vw < w || vh < h) => {
            img.resize(vw, vh, image::imageops::FilterType::Triangle)
        }
        _ => img,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    if opts.png {
        img.write_to(&mut out, ImageFormat::Png)
            .map_err(|e| RenderError::Encode(e.to_string()))?;
    } else {
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut out,
            opts.quality.clamp(1, 100),
        );
        img.write_with_encoder(enc)
            .map_err(|e| RenderError::Encode(e.to_string()))?;
    }
    Ok(out.into_inner())
}

fn samples(pm: &PixelModule, bytes: &[u8], n: usize) -> Result<Vec<f64>, RenderError> {
    let signed = pm.pixel_representation == 1;
    let bits = pm.bits_stored.clamp(1, pm.bits_allocated.max(1));
    let sign_extend = |v: u32| -> f64 {
        let mask = if bits >= 32 {
            u32::MAX
        } else {
            (1u32 << bits) - 1
        };
        let v = v & mask;
        if signed && bits < 32 && v & (1 << (bits - 1)) != 0 {
            f64::from(v as i32 - (1i32 << bits))
        } else {
            f64::from(v)
        }
    };
    match pm.bits_allocated {
        8 if bytes.len() >= n => Ok(bytes[..n]
            .iter()
            .map(|&b| sign_extend(u32::from(b)))
            .collect()),
        16 if bytes.len() >= 2 * n => Ok(bytes
            .chunks_exact(2)
            .take(n)
            .map(|c| sign_extend(u32::from(u16::from_le_bytes([c[0], c[1]]))))
            .collect()),
        32 if bytes.len() >= 4 * n => Ok(bytes
            .chunks_exact(4)
            .take(n)
            .map(|c| sign_extend(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect()),
        b => Err(RenderError::Unsupported(format!(
            "BitsAllocated {b} or a short frame"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct() -> PixelModule {
        PixelModule {
            rows: 2,
            columns: 2,
            samples_per_pixel: 1,
            bits_allocated: 16,
            bits_stored: 12,
            pixel_representation: 0,
            photometric: "MONOCHROME2".into(),
            planar_configuration: 0,
            rescale_slope: 1.0,
            rescale_intercept: -1024.0,
            window: Some((40.0, 400.0)),
        }
    }

    #[test]
    fn window_maps_hu_to_gray() {
        // -1024 HU (air) → black; 40 HU (centre) → mid grey; 1000 HU → white.
        let px: Vec<u8> = [0u16, 1064, 2024, 1064]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let png = render(
            &ct(),
            &px,
            &RenderOptions {
                png: true,
                ..Default::default()
            },
        )
        .unwrap();
        let img = image::load_from_memory(&png).unwrap().to_luma8();
        assert_eq!(img.get_pixel(0, 0).0[0], 0);
        assert!((126..=129).contains(&img.get_pixel(1, 0).0[0]));
        assert_eq!(img.get_pixel(0, 1).0[0], 255);
        let mut inv = ct();
        inv.photometric = "MONOCHROME1".into();
        let png = render(
            &inv,
            &px,
            &RenderOptions {
                png: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            image::load_from_memory(&png)
                .unwrap()
                .to_luma8()
                .get_pixel(0, 0)
                .0[0],
            255
        );
    }

    #[test]
    fn signed_samples_and_viewport() {
        let mut pm = ct();
        pm.pixel_representation = 1;
        pm.bits_stored = 16;
        pm.rescale_intercept = 0.0;
        pm.window = None;
        let px: Vec<u8> = [-100i16, 100, 0, 0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let png = render(
            &pm,
            &px,
            &RenderOptions {
                png: true,
                ..Default::default()
            },
        )
        .unwrap();
        let img = image::load_from_memory(&png).unwrap().to_luma8();
        assert!(img.get_pixel(0, 0).0[0] < img.get_pixel(1, 0).0[0]);
        let jpg = render(
            &pm,
            &px,
            &RenderOptions {
                viewport: Some((1, 1)),
                quality: 90,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(&jpg[..2], &[0xFF, 0xD8]);
        assert_eq!(image::load_from_memory(&jpg).unwrap().width(), 1);
    }
}
