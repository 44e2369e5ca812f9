#include "model/topology.h"

#include <string.h>

#include "kernels/conv.h"

int image_topology_build(const vt_model_config *c, image_topology *t) {
    memset(t, 0, sizeof *t);
    t->image_size = c->image_size;
    t->stem_width = c->stem_width;
    t->stem_out = conv3x3_out(c->image_size, 2);
    int cin = c->stem_width, h = t->stem_out;
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < c->stage_depths[s]; i++) {
            if (t->mbconv_count == VT_MAX_MBCONV) return -1;
            topo_mbconv *b = &t->mbconv[t->mbconv_count++];
            b->stage = s;
            b->index = i;
            b->cin = cin;
            b->cout = c->stage_widths[s];
            b->mid = 4 * b->cout;
            b->stride = i == 0 ? 2 : 1;
            b->has_expand = b->stride == 2 && cin != b->cout;
            b->h_in = h;
            b->h_out = conv3x3_out(h, b->stride);
            cin = b->cout;
            h = b->h_out;
        }
        t->stage_end[s] = t->mbconv_count;
    }
    t->pool_channels = cin;
    t->pool_in = h;
    t->grid = conv3x3_out(h, 2);
    t->tokens = t->grid * t->grid;
    t->width = c->width;
    t->depth = c->depth;
    t->heads = c->heads;
    t->mlp_hidden = c->mlp_hidden;
    t->mlp_glu = c->mlp_glu;
    return 0;
}
