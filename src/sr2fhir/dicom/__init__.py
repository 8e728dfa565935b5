"""DICOM in: the only layer that knows pydicom (docs/architecture.md).

Reading and sniffing (Part 10, DICOM JSON), the structure check, raw value decoding, the
content tree, template recognition and the tree dump. What leaves this package is our own
typed model (content.py), never a pydicom object.
"""
