//go:build android

package platform

/*
#include <jni.h>
#include <stdint.h>
#include <stdlib.h>

// chat_check clears a pending Java exception and reports whether there
// was one.
static int chat_check(JNIEnv *env) {
	if ((*env)->ExceptionCheck(env)) {
		(*env)->ExceptionClear(env);
		return 1;
	}
	return 0;
}

// chat_open_url starts an ACTION_VIEW intent for url from the
// application's context: new Intent(Intent.ACTION_VIEW, Uri.parse(url))
// with FLAG_ACTIVITY_NEW_TASK (the context is not an activity). It
// returns NULL, or what failed.
static const char *chat_open_url(uintptr_t vmp, uintptr_t ctxp, const char *url) {
	JavaVM *vm = (JavaVM *)vmp;
	jobject ctx = (jobject)ctxp;
	JNIEnv *env = NULL;
	int attached = 0;
	jint res = (*vm)->GetEnv(vm, (void **)&env, JNI_VERSION_1_6);
	if (res == JNI_EDETACHED) {
		if ((*vm)->AttachCurrentThread(vm, (void *)&env, NULL) != JNI_OK) {
			return "cannot attach to the Java VM";
		}
		attached = 1;
	} else if (res != JNI_OK) {
		return "cannot reach the Java VM";
	}
	const char *err = NULL;
	(*env)->PushLocalFrame(env, 16);
	jclass uriClass = (*env)->FindClass(env, "android/net/Uri");
	jclass intentClass = (*env)->FindClass(env, "android/content/Intent");
	if (chat_check(env) || uriClass == NULL || intentClass == NULL) {
		err = "Uri or Intent class not found";
		goto out;
	}
	jmethodID parse = (*env)->GetStaticMethodID(env, uriClass, "parse", "(Ljava/lang/String;)Landroid/net/Uri;");
	jfieldID actionView = (*env)->GetStaticFieldID(env, intentClass, "ACTION_VIEW", "Ljava/lang/String;");
	jmethodID newIntent = (*env)->GetMethodID(env, intentClass, "<init>", "(Ljava/lang/String;Landroid/net/Uri;)V");
	jmethodID addFlags = (*env)->GetMethodID(env, intentClass, "addFlags", "(I)Landroid/content/Intent;");
	jmethodID startActivity = (*env)->GetMethodID(env, (*env)->GetObjectClass(env, ctx), "startActivity", "(Landroid/content/Intent;)V");
	if (chat_check(env) || !parse || !actionView || !newIntent || !addFlags || !startActivity) {
		err = "Intent methods not found";
		goto out;
	}
	jstring jurl = (*env)->NewStringUTF(env, url);
	jobject uri = (*env)->CallStaticObjectMethod(env, uriClass, parse, jurl);
	jobject action = (*env)->GetStaticObjectField(env, intentClass, actionView);
	jobject intent = (*env)->NewObject(env, intentClass, newIntent, action, uri);
	if (chat_check(env) || intent == NULL) {
		err = "cannot make the intent";
		goto out;
	}
	(*env)->CallObjectMethod(env, intent, addFlags, (jint)0x10000000); // FLAG_ACTIVITY_NEW_TASK
	(*env)->CallVoidMethod(env, ctx, startActivity, intent);
	if (chat_check(env)) {
		err = "no app can open it (ActivityNotFoundException)";
	}
out:
	(*env)->PopLocalFrame(env, NULL);
	if (attached) {
		(*vm)->DetachCurrentThread(vm);
	}
	return err;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"gioui.org/app"
)

// openURL hands u to the app that views it (the browser) with an
// ACTION_VIEW intent, through JNI with Gio's Java VM and application
// context.
func openURL(u string) error {
	vm, ctx := app.JavaVM(), app.AppContext()
	if vm == 0 || ctx == 0 {
		return errors.New("cannot open links before the app has started")
	}
	// The JNI environment belongs to the thread attached to the VM.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	curl := C.CString(u)
	defer C.free(unsafe.Pointer(curl))
	if msg := C.chat_open_url(C.uintptr_t(vm), C.uintptr_t(ctx), curl); msg != nil {
		return fmt.Errorf("cannot open %s: %s", u, C.GoString(msg))
	}
	return nil
}
