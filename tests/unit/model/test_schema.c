/* The schema (src/model/schema.c): every family member's tensor list is in
 * open_clip's order with unique names, sums to the parameter counts, finds
 * each (kind, index) it built, numbers the lock groups as open_clip counts
 * them, and the key layouts normalise as both loaders rely on. Parameter
 * counts themselves are checked against open_clip in tests/test_cli.py. */
#include <string.h>

#include "model/config.h"
#include "model/schema.h"
#include "unit.h"

static void check_member(const vt_model_config *c) {
    model_schema s;
    CHECK(schema_build(c, 1, 0, &s, NULL) == VT_OK);
    int64_t sum[3] = {0, 0, 0};
    int unique = 1, found = 1, ordered = 1;
    for (int i = 0; i < s.count; i++) {
        const schema_tensor *t = &s.tensors[i];
        sum[t->tower] += (int64_t)t->count;
        for (int j = 0; j < i && unique; j++) unique = strcmp(t->name, s.tensors[j].name) != 0;
        found &= schema_find(&s, t->kind, t->index[0], t->index[1]) == i;
        char name[128];
        schema_name(t->kind, t->index[0], t->index[1], name, sizeof name);
        found &= !strcmp(name, t->name);
    }
    /* open_clip's order: logit_scale, the trunk (pos_embed first), head, then text. */
    ordered &= s.tensors[0].kind == T_LOGIT_SCALE;
    ordered &= !c->has_pos_embed || s.tensors[1].kind == T_POS_EMBED;
    int head = schema_find(&s, T_HEAD_PROJ_W, -1, -1), text = schema_find(&s, T_TXT_POS, -1, -1);
    ordered &= head > 0 && text == head + 1 && s.tensors[s.count - 1].kind == T_TXT_LN_FINAL_B;
    CHECK(unique);
    CHECK(found);
    CHECK(ordered);
    CHECK(sum[SCHEMA_IMAGE] == s.params[SCHEMA_IMAGE] && sum[SCHEMA_IMAGE] == vt_config_image_params(c));
    CHECK(sum[SCHEMA_TEXT] == vt_config_text_params(c) && sum[SCHEMA_SHARED] == 1);
    /* Lock groups: stem 0, block i -> 1 + i, fc_norm depth + 1, head and logit_scale never;
     * text: embeddings 0, resblock i -> 1 + i, ln_final with the last block, projection last. */
    CHECK(s.image_lock_groups == c->depth + 2 && s.text_lock_groups == c->text_layers + 2);
    CHECK(s.tensors[schema_find(&s, T_STEM_CONV1_W, -1, -1)].lock_group == 0);
    CHECK(s.tensors[schema_find(&s, T_BLK_QKV_W, c->depth - 1, -1)].lock_group == c->depth);
    CHECK(s.tensors[schema_find(&s, T_FC_NORM_W, -1, -1)].lock_group == c->depth + 1);
    CHECK(s.tensors[head].lock_group == -1 && s.tensors[0].lock_group == -1);
    CHECK(s.tensors[schema_find(&s, T_TXT_LN_FINAL_W, -1, -1)].lock_group == c->text_layers);
    CHECK(s.tensors[schema_find(&s, T_TXT_PROJ, -1, -1)].lock_group == c->text_layers + 1);
    /* open_clip_train's decay rule: matrices yes, norms, biases and logit_scale no. */
    CHECK(s.tensors[schema_find(&s, T_BLK_QKV_W, 0, -1)].decay && s.tensors[schema_find(&s, T_TXT_TOKEN, -1, -1)].decay);
    CHECK(!s.tensors[schema_find(&s, T_BLK_QKV_B, 0, -1)].decay && !s.tensors[0].decay);
    CHECK(!s.tensors[schema_find(&s, T_TXT_LN1_W, 0, -1)].decay);
    CHECK(schema_find(&s, T_HEAD_PROJ_B, -1, -1) < 0 && schema_find(&s, T_BLK_QKV_W, c->depth, -1) < 0);
    schema_free(&s);
}

/* A ViT config: open_clip CLIP's order and VisionTransformer.lock()'s groups
 * (0 = conv1, embeddings, ln_pre; 1 + i = resblock i, the last with ln_post;
 * layers + 1 = proj); LayerScale gammas exactly with ls_init_value. */
static void check_vit_member(const vt_model_config *c) {
    model_schema s;
    CHECK(schema_build(c, 1, 0, &s, NULL) == VT_OK);
    int64_t sum[3] = {0, 0, 0};
    int unique = 1, found = 1;
    for (int i = 0; i < s.count; i++) {
        const schema_tensor *t = &s.tensors[i];
        sum[t->tower] += (int64_t)t->count;
        for (int j = 0; j < i && unique; j++) unique = strcmp(t->name, s.tensors[j].name) != 0;
        found &= schema_find(&s, t->kind, t->index[0], t->index[1]) == i;
    }
    CHECK(unique && found);
    CHECK(s.tensors[0].kind == T_LOGIT_SCALE && s.tensors[1].kind == T_VIT_CLASS_EMB);
    CHECK(sum[SCHEMA_IMAGE] == vt_config_image_params(c) && sum[SCHEMA_TEXT] == vt_config_text_params(c));
    int grid = c->image_size / c->patch_size, last = c->depth - 1;
    const schema_tensor *pos = &s.tensors[schema_find(&s, T_VIT_POS, -1, -1)];
    CHECK(pos->shape[0] == grid * grid + 1 && pos->shape[1] == c->width);
    CHECK(s.image_lock_groups == c->depth + 2);
    CHECK(s.tensors[schema_find(&s, T_VIT_CONV1_W, -1, -1)].lock_group == 0);
    CHECK(s.tensors[schema_find(&s, T_VIT_LN_PRE_W, -1, -1)].lock_group == 0);
    CHECK(s.tensors[schema_find(&s, T_VIT_FC_W, last, -1)].lock_group == c->depth);
    CHECK(s.tensors[schema_find(&s, T_VIT_LN_POST_B, -1, -1)].lock_group == c->depth);
    CHECK(s.tensors[schema_find(&s, T_VIT_PROJ, -1, -1)].lock_group == c->depth + 1);
    CHECK((schema_find(&s, T_VIT_LS1, 0, -1) >= 0) == (c->ls_init > 0));
    CHECK(!s.tensors[schema_find(&s, T_VIT_CLASS_EMB, -1, -1)].decay && s.tensors[schema_find(&s, T_VIT_POS, -1, -1)].decay);
    CHECK(!s.tensors[schema_find(&s, T_VIT_LN1_W, 0, -1)].decay && s.tensors[schema_find(&s, T_VIT_IN_PROJ_W, 0, -1)].decay);
    CHECK(schema_find(&s, T_STEM_CONV1_W, -1, -1) < 0 && schema_find(&s, T_HEAD_PROJ_W, -1, -1) < 0);
    schema_free(&s);
}

static void check_layouts(void) {
    char out[128];
    int plain = 0, timm = 0;
    schema_detect_layout("module.positional_embedding", &plain, &timm);
    CHECK(plain == 1 && timm == 0);
    schema_detect_layout("patch_embed.backbone.stem.conv1.weight", &plain, &timm);
    CHECK(timm == 1);
    schema_normalize_key("module.module.transformer.resblocks.0.ln_1.weight", 1, 0, out, sizeof out);
    CHECK(!strcmp(out, "text.transformer.resblocks.0.ln_1.weight"));
    schema_normalize_key("attn_mask", 1, 0, out, sizeof out);
    CHECK(!strcmp(out, "text.attn_mask") && schema_is_buffer(out));
    schema_normalize_key("visual.trunk.blocks.0.norm1.weight", 1, 0, out, sizeof out);
    CHECK(!strcmp(out, "visual.trunk.blocks.0.norm1.weight"));
    schema_normalize_key("head.weight", 0, 1, out, sizeof out);
    CHECK(!strcmp(out, "visual.head.proj.weight"));
    schema_normalize_key("blocks.3.mlp.w0.weight", 0, 1, out, sizeof out);
    CHECK(!strcmp(out, "visual.trunk.blocks.3.mlp.w0.weight"));
    CHECK(!schema_is_buffer("text.positional_embedding"));
}

/* A ConvNeXt config: open_clip CLIP's order over timm's trunk (stem, stages
 * with downsample before blocks and gamma first in each block, head.norm),
 * then the head and the text tower; counts equal to the config's; lock
 * groups as timm's fine group_matcher (one per block, a downsample with its
 * stage's first block, head.norm last); the MLP weights 4-D exactly for a
 * conv_mlp trunk; the decay rule. */
static void check_convnext_member(const vt_model_config *c) {
    for (int head_bias = 0; head_bias < 2; head_bias++) {
        model_schema s;
        CHECK(schema_build(c, 1, head_bias, &s, NULL) == VT_OK);
        int64_t sum[3] = {0, 0, 0};
        int unique = 1;
        for (int i = 0; i < s.count; i++) {
            sum[s.tensors[i].tower] += (int64_t)s.tensors[i].count;
            for (int j = 0; j < i && unique; j++) unique = strcmp(s.tensors[i].name, s.tensors[j].name) != 0;
        }
        CHECK(unique);
        CHECK(s.tensors[0].kind == T_LOGIT_SCALE && s.tensors[1].kind == T_CNX_STEM_W);
        int ds = schema_find(&s, T_CNX_DS_CONV_W, 1, -1), gamma = schema_find(&s, T_CNX_GAMMA, 1, 0);
        CHECK(ds > 0 && gamma == ds + 2 && schema_find(&s, T_CNX_DW_W, 1, 0) == gamma + 1);
        CHECK(schema_find(&s, T_CNX_DS_CONV_W, 0, -1) < 0 && schema_find(&s, T_CNX_GAMMA, 3, c->cnx_depths[3]) < 0);
        int head = schema_find(&s, c->head_mlp ? T_HEAD_MLP_FC1_W : T_HEAD_PROJ_W, -1, -1);
        CHECK(head == schema_find(&s, T_CNX_HEAD_NORM_B, -1, -1) + 1 && s.tensors[s.count - 1].kind == T_TXT_LN_FINAL_B);
        CHECK((schema_find(&s, c->head_mlp ? T_HEAD_MLP_FC2_B : T_HEAD_PROJ_B, -1, -1) >= 0) == head_bias);
        CHECK(sum[SCHEMA_IMAGE] == s.params[SCHEMA_IMAGE] && sum[SCHEMA_TEXT] == vt_config_text_params(c));
        if (!head_bias) CHECK(sum[SCHEMA_IMAGE] == vt_config_image_params(c));
        int blocks = c->cnx_depths[0] + c->cnx_depths[1] + c->cnx_depths[2] + c->cnx_depths[3];
        int first2 = 1 + c->cnx_depths[0] + c->cnx_depths[1]; /* stage 2's first block's group */
        CHECK(s.image_lock_groups == blocks + 2 && s.tensors[head].lock_group == -1);
        CHECK(s.tensors[schema_find(&s, T_CNX_FC1_W, 2, 0)].lock_group == first2);
        CHECK(s.tensors[schema_find(&s, T_CNX_DS_CONV_W, 2, -1)].lock_group == first2);
        CHECK(s.tensors[schema_find(&s, T_CNX_GAMMA, 2, 1)].lock_group == first2 + 1);
        CHECK(s.tensors[schema_find(&s, T_CNX_STEM_W, -1, -1)].lock_group == 0);
        CHECK(s.tensors[schema_find(&s, T_CNX_HEAD_NORM_W, -1, -1)].lock_group == blocks + 1);
        CHECK(s.tensors[schema_find(&s, T_CNX_FC2_W, 0, 0)].ndim == (c->cnx_conv_mlp ? 4 : 2));
        CHECK(s.tensors[schema_find(&s, T_CNX_FC1_W, 2, 0)].decay && !s.tensors[gamma].decay &&
              !s.tensors[schema_find(&s, T_CNX_NORM_W, 0, 0)].decay);
        schema_free(&s);
    }
}

int main(void) {
    int convnext = 0;
    for (int i = 0; i < vt_config_count(); i++) {
        const vt_model_config *c = vt_config_at(i);
        if (c->image_tower == VT_TOWER_VIT) check_vit_member(c);
        else if (c->image_tower == VT_TOWER_CONVNEXT) check_convnext_member(c), convnext++;
        else check_member(c);
    }
    CHECK(convnext == 15); /* open_clip's 11, the paper's three benchmark members, ConvNeXt-Atto */
    vt_model_config custom;
    CHECK(vt_config_lookup("ViTamin-C32-N3-64-SwiGLU", &custom, NULL) == VT_OK);
    CHECK(custom.mlp_glu == 1 && !strcmp(custom.name, "ViTamin-C32-N3-64-SwiGLU"));
    check_member(&custom);
    model_schema image_only;
    CHECK(schema_build(&custom, 0, 1, &image_only, NULL) == VT_OK);
    CHECK(schema_find(&image_only, T_TXT_TOKEN, -1, -1) < 0 && schema_find(&image_only, T_HEAD_PROJ_B, -1, -1) > 0);
    CHECK(image_only.mlp_glu == 1);
    schema_free(&image_only);
    check_layouts();
    return unit_summary("schema");
}
