"""Audio-driven face animation models: FaceTalk, MeshTalk, baselines."""
