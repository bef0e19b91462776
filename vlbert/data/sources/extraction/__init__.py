"""Region features for your own images from a torchvision detection model (`vlbert extract-features`):
the detector (`detector`), its boxes, box features and class distributions (`regions`), and a
folder of images to a folder of ``{image_id}.npz`` files (`folder`)."""
