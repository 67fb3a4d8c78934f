// GET /: the web playground, one static page (no build step, no CDN): a
// prompt box, the model / routing controls, and the answer streaming in with
// each token tinted by its top adapter under a stacked band of the weights.
#pragma once

namespace tokenlora::server {

const char* PlaygroundHtml();

}  // namespace tokenlora::server
