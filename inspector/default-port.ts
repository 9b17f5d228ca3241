/** `msgtrace inspect`'s default port; its own file so `msgtrace run` can name it without loading the inspector. */
export const defaultInspectorPort = 8480;
