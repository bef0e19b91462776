"""The ways an answer's map can be made (`vlbert.run.answer_maps`), named without importing torch
so that the command line can offer them."""

MAP_METHODS = {
    "occlusion": "occlusion: how far the answer's score falls with each region hidden",
    "removal": "removal: how far the answer's score falls with each region left out of the scene",
    "attention": "co-attention from the question to the regions, averaged over tokens, heads and blocks",
}
# the default for models that read regions; removal cannot leave a grid cell or patch out, so a
# model that reads pixels is explained by occlusion
DEFAULT_MAP_METHOD = "removal"
PIXEL_MAP_METHOD = "occlusion"
