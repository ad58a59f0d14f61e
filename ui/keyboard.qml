// The on-screen keyboard (Qt Virtual Keyboard) with pinyin, embedded in the kiosk window.
import QtQuick
import QtQuick.VirtualKeyboard
import QtQuick.VirtualKeyboard.Settings

Item {
    id: root
    property bool active: panel.active
    property string locale: "zh_CN"
    onLocaleChanged: VirtualKeyboardSettings.locale = locale

    InputPanel {
        id: panel
        width: root.width
        anchors.bottom: parent.bottom
        Component.onCompleted: {
            VirtualKeyboardSettings.activeLocales = ["zh_CN", "en_US"]
            VirtualKeyboardSettings.locale = "zh_CN"
        }
    }
}
