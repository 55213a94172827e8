//! Decoding one compressed frame (JPEG baseline/extended/lossless, JPEG-LS, RLE, JPEG 2000 incl.
//! HTJ2K) to native little-endian samples through dicom-pixeldata, for rendering and for frames
//! asked for uncompressed. Only the requested frame's fragments are handed to the decoder, so a
//! multi-frame object is never decoded whole to serve one frame. JPEG-LS uses CharLS, whose
//! build needs cmake (installed by `scripts/demo.sh` and the test installer).

use crate::render::PixelModule;
use dicom_core::value::{PixelFragmentSequence, Value as DValue};
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_object::{FileDicomObject, FileMetaTableBuilder, InMemDicomObject};
use dicom_pixeldata::PixelDecoder;

#[derive(Debug, Clone)]
pub struct DecodedFrame {
    pub bytes: Vec<u8>,
    pub samples_per_pixel: u32,
    pub bits_allocated: u32,
    pub photometric: String,
    /// 1 when samples are stored plane by plane.
    pub planar_configuration: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot decode the frame: {0}")]
pub struct DecodeError(String);

/// A frame's stored bytes as native little-endian samples, with the pixel module that describes
/// them: decoded when `encapsulated` (which may change the samples, bits and photometric
/// interpretation, e.g. YBR_FULL_422 → RGB), 16-bit samples swapped from Explicit VR Big Endian
/// (retired, PS3.5 §A.3) otherwise. For rendering and for quality scoring alike.
pub fn native_frame(
    transfer_syntax: &str,
    pm: &PixelModule,
    mut bytes: Vec<u8>,
    encapsulated: bool,
) -> Result<(Vec<u8>, PixelModule), DecodeError> {
    let mut out = pm.clone();
    if encapsulated {
        let d = decode_frame(transfer_syntax, pm, bytes)?;
        out.samples_per_pixel = d.samples_per_pixel;
        out.bits_allocated = d.bits_allocated;
        out.bits_stored = out.bits_stored.min(d.bits_allocated);
        out.photometric = d.photometric;
        out.planar_configuration = d.planar_configuration;
        return Ok((d.bytes, out));
    }
    if crate::ts::lookup(transfer_syntax).is_some_and(|t| t.big_endian) && pm.bits_allocated == 16 {
        bytes.chunks_exact_mut(2).for_each(<[u8]>::reverse);
    }
    Ok((bytes, out))
}

pub fn decode_frame(
    transfer_syntax: &str,
    pm: &PixelModule,
    frame: Vec<u8>,
) -> Result<DecodedFrame, DecodeError> {
    let err = |e: &dyn std::fmt::Display| DecodeError(e.to_string());
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(transfer_syntax)
        .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.7")
        .media_storage_sop_instance_uid("2.25.1")
        .build()
        .map_err(|e| err(&e))?;
    let mut obj = FileDicomObject::<InMemDicomObject>::new_empty_with_meta(meta);
    let us = |g: u16, e: u16, v: u32| {
        DataElement::new(Tag(g, e), VR::US, PrimitiveValue::from(v as u16))
    };
    obj.put(us(0x0028, 0x0002, pm.samples_per_pixel));
    obj.put(DataElement::new(
        Tag(0x0028, 0x0004),
        VR::CS,
        PrimitiveValue::from(pm.photometric.as_str()),
    ));
    if pm.samples_per_pixel > 1 {
        obj.put(us(0x0028, 0x0006, pm.planar_configuration));
    }
    obj.put(DataElement::new(
        Tag(0x0028, 0x0008),
        VR::IS,
        PrimitiveValue::from("1"),
    ));
    obj.put(us(0x0028, 0x0010, pm.rows));
    obj.put(us(0x0028, 0x0011, pm.columns));
    obj.put(us(0x0028, 0x0100, pm.bits_allocated));
    obj.put(us(0x0028, 0x0101, pm.bits_stored));
    obj.put(us(0x0028, 0x0102, pm.bits_stored.saturating_sub(1)));
    obj.put(us(0x0028, 0x0103, pm.pixel_representation));
    obj.put(DataElement::new(
        Tag(0x7FE0, 0x0010),
        VR::OB,
        DValue::PixelSequence(PixelFragmentSequence::new(Vec::<u32>::new(), vec![frame])),
    ));
    let decoded = obj.decode_pixel_data().map_err(|e| err(&e))?;
    Ok(DecodedFrame {
        bytes: decoded.data().to_vec(),
        samples_per_pixel: u32::from(decoded.samples_per_pixel()),
        bits_allocated: u32::from(decoded.bits_allocated()),
        photometric: decoded.photometric_interpretation().to_string(),
        planar_configuration: match decoded.planar_configuration() {
            dicom_pixeldata::PlanarConfiguration::Standard => 0,
            _ => 1,
        },
    })
}
